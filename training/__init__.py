"""Masquerade training."""

"""Masquerade models."""

"""Masquerade installation."""

"""Mutual: one trustworthy picture of a health system's capacity, and a fair way to share its data."""

__version__ = "0.1.0"

"""Runnable examples (not installed with the package; run them from a checkout)."""

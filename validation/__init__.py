"""Validation cases with published reference values, and their runner."""

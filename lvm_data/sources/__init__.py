"""Readers that list the items of a source, unit by unit."""

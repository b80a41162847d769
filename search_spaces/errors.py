"""Errors raised for bad search-space input: each names what is wrong and what is allowed."""


class SpaceError(ValueError):
    """A search-space spec cannot be loaded or is invalid (unknown preset, bad YAML, bad field)."""


class ArchError(ValueError):
    """An architecture is not a member of the space; the message names the field and its allowed values."""

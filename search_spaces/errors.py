"""Errors raised for bad input, and helpers that turn bad input into messages that name the field."""

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


class UserError(ValueError):
    """Base of every error the product raises for its user's input (config, data, arch, file, request).

    Anything else that escapes a job is a bug: workers record it as an internal error with its
    traceback, not as the user's fault."""


class SpaceError(UserError):
    """A search-space spec cannot be loaded or is invalid (unknown preset, bad YAML, bad field)."""


class ArchError(UserError):
    """An architecture is not a member of the space; the message names the field and its allowed values."""


def field_messages(err: ValidationError) -> list[str]:
    """'field.path: message' for each error of a pydantic validation."""
    return [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()]


def read_yaml(path: str | Path, error: type[ValueError], what: str) -> Any:
    """The parsed YAML of `path`; a missing file or malformed YAML raises `error` saying so."""
    file = Path(path)
    if not file.is_file():
        raise error(f"{what} not found: {path}")
    try:
        return yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise error(f"malformed YAML in {path}: {err}") from None

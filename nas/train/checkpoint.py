"""Atomic checkpoints that hold tensors (and plain numbers) only.

Written to a temporary file in the same folder, fsynced, then renamed over the old one, so a
crash leaves either the previous checkpoint or the new one, never a torn file. Loaded with
`weights_only=True`: nothing is unpickled but tensors and plain containers.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from nas.files import Guard, atomic_write


def save_checkpoint(path: Path, state: dict[str, Any], guard: Guard = nullcontext) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp), guard)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at `path`, or None if there is none."""
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)

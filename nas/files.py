"""File helpers: atomic writes (temp file in the same folder, fsync, rename) and tensor files.

A crash leaves either the previous file or the new one, never a torn file. A `guard` fences the
rename: a queued job's attempt passes one that holds the job (and checks that the attempt still owns
it) while the file is put in place, so an attempt that lost its job never replaces the owner's files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch

# held while a file is renamed into place; raises if the writer may no longer write there
Guard = Callable[[], AbstractContextManager[Any]]


def atomic_write(path: Path, write: Callable[[str], Any], guard: Guard = nullcontext) -> None:
    """Call write(file_path) on a temp file next to `path`, fsync it and rename it into place under `guard`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        with guard():
            os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: Path, text: str, guard: Guard = nullcontext) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text), guard)


def save_tensors(
    path: Path, module: torch.nn.Module, metadata: dict[str, str] | None = None, guard: Guard = nullcontext,
) -> None:
    """A module's state dict as safetensors, written atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata), guard)

"""Inputs read a batch at a time, so that memory is bounded by the batch rather than the dataset.

A `Source` reads raw examples by row: `ArraySource` from an .npy array memory-mapped inside its .npz file (a
compressed member is first unpacked, in chunks, to an .npy file beside it), `ImageSource` by decoding image
files on demand. `LazyInputs` stands for one split's (N, C, ...) float32 input tensor wherever the engine reads
one (`len`, `shape`, `dim()`, `device`, indexing by an index tensor or a slice): each read is converted to
channels first, normalized and moved to the device then. Sources pickle as their file paths, so a process that
receives one (a Ray worker on the same machine) reopens the file.
"""

from __future__ import annotations

import math
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from nas.data.splits import DataError, DataSplits, as_channels_first, class_count, split_rows

CHUNK_BYTES = 1024 * 1024  # float32 inputs per pass when a whole split is scanned (statistics, checks)


class Source(Protocol):
    shape: tuple[int, ...]  # one example, channels first

    def __len__(self) -> int: ...

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The examples at `rows` (any order), channels first, float32: (len(rows), *shape)."""
        ...


def member_memmap(path: str, name: str) -> np.ndarray:
    """Array `name` of the .npz file at `path`, memory-mapped read-only (unpacked beside it first when the
    member is compressed)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{name}.npy")
        if info.compress_type == zipfile.ZIP_STORED:
            with open(path, "rb") as f:
                f.seek(info.header_offset)
                local = f.read(30)  # the local file header: its name and extra field come next
                start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
                f.seek(start)
                shape, fortran, dtype = _npy_header(f)
                offset = f.tell()
            return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
        unpacked = Path(f"{path}.{name}.npy")
        if not unpacked.exists() or unpacked.stat().st_mtime < Path(path).stat().st_mtime:
            partial = unpacked.with_suffix(".part")
            with zf.open(info) as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst, length=16 * 1024 * 1024)
            partial.replace(unpacked)
    return np.load(unpacked, mmap_mode="r", allow_pickle=False)


def _npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


class ArraySource:
    """Rows of an .npz member, memory-mapped (opened on first use, and again after unpickling); each read is
    turned channels first, float32."""

    def __init__(self, path: str, name: str, layout: str, kind: str | None):
        self.path, self.name, self.layout, self.kind = path, name, layout, kind
        self._array: np.ndarray | None = None
        self.shape = as_channels_first(self.array[:1], kind, path, layout).shape[1:]

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = member_memmap(self.path, self.name)
        return self._array

    def __len__(self) -> int:
        return len(self.array)

    def read(self, rows: np.ndarray) -> np.ndarray:
        order = np.argsort(rows)  # ascending rows read the file forwards
        out = np.empty((len(rows), *self.shape), dtype=np.float32)
        out[order] = as_channels_first(np.asarray(self.array[rows[order]]), self.kind, self.path, self.layout)
        return out

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_array"} | {"_array": None}


class ImageSource:
    """Image files decoded when read: greyscale (1 channel) if every image is, else RGB, resized to `size`."""

    def __init__(self, files: list[Path], size: int, grey: bool):
        self.files, self.size, self.grey = files, size, grey
        self.shape: tuple[int, ...] = (1 if grey else 3, size, size)

    def __len__(self) -> int:
        return len(self.files)

    def read(self, rows: np.ndarray) -> np.ndarray:
        return np.stack([decode(self.files[r], self.size, self.grey) for r in rows]).astype(np.float32)


def decode(file: Path, size: int, grey: bool) -> np.ndarray:
    """One image as (C, size, size) float32 in [0, 1]."""
    try:
        with Image.open(file) as im:
            pixels = im.convert("L" if grey else "RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{file}: not a readable image ({err})") from None
    if pixels.size != (size, size):
        pixels = pixels.resize((size, size), Image.Resampling.BILINEAR)
    a = np.asarray(pixels, dtype=np.float32) / 255.0
    return a[None] if grey else a.transpose(2, 0, 1)


def chunk_rows(shape: tuple[int, ...]) -> int:
    """How many examples of `shape` make a chunk of about CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // (4 * math.prod(shape)))


def chunks(source: Source, rows: np.ndarray) -> Iterator[np.ndarray]:
    """The examples at `rows`, a chunk at a time."""
    step = chunk_rows(source.shape)
    for start in range(0, len(rows), step):
        yield source.read(rows[start : start + step])


def channel_stats(source: Source, rows: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over the examples at `rows`, in one pass of bounded memory (float64 sums)."""
    total = np.zeros(source.shape[0])
    squares = np.zeros(source.shape[0])
    count = 0
    for x in chunks(source, rows):
        axes = (0,) + tuple(range(2, x.ndim))
        total += x.sum(axis=axes, dtype=np.float64)
        squares += np.square(x).sum(axis=axes, dtype=np.float64)
        count += x.size // x.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0)) + 1e-6
    return [float(m) for m in mean], [float(s) for s in std]


class LazyInputs:
    """One split's inputs, read from `source` at `rows` a batch at a time (see the module docstring)."""

    def __init__(self, source: Source, rows: np.ndarray, mean: list[float] | None = None,
                 std: list[float] | None = None, device: torch.device | str = "cpu"):
        self.source, self.rows = source, np.asarray(rows, dtype=np.int64)
        self.mean, self.std, self.device = mean, std, torch.device(device)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self.source.shape))

    def dim(self) -> int:
        return 1 + len(self.source.shape)

    def __getitem__(self, key: slice | Tensor | np.ndarray) -> Tensor:
        rows = self.rows[key] if isinstance(key, slice) else self.rows[np.asarray(torch.as_tensor(key).cpu())]
        x = torch.from_numpy(self.source.read(rows))
        if self.mean is not None and self.std is not None:
            shape = (1, len(self.mean)) + (1,) * (x.dim() - 2)
            x = (x - torch.tensor(self.mean).reshape(shape)) / torch.tensor(self.std).reshape(shape)
        return x.to(self.device)

    def normalized(self, mean: list[float], std: list[float]) -> LazyInputs:
        return LazyInputs(self.source, self.rows, mean, std, self.device)

    def to(self, device: torch.device | str) -> LazyInputs:
        return LazyInputs(self.source, self.rows, self.mean, self.std, device)

    def materialize(self) -> Tensor:
        """The whole split as one tensor (for the few places that need it all, e.g. workers on other machines)."""
        step = chunk_rows(self.source.shape)
        return torch.cat([self[s : s + step] for s in range(0, len(self), step)])


def lazy_splits(x: Source, y: np.ndarray, x_test: Source | None, y_test: np.ndarray | None, val_fraction: float,
                test_fraction: float, seed: int, source: str) -> DataSplits:
    """`make_splits` for inputs read a batch at a time: the same rows in each split, statistics in one pass."""
    num_classes = class_count(y, y_test, source)
    train_idx, val_idx, test_idx = split_rows(len(y), x_test is not None, val_fraction, test_fraction, seed, source)
    mean, std = channel_stats(x, train_idx)
    if x_test is None or y_test is None:
        assert test_idx is not None
        test, y_test = LazyInputs(x, test_idx), y[test_idx]
    else:
        test = LazyInputs(x_test, np.arange(len(x_test)))
    t = torch.from_numpy
    return DataSplits(LazyInputs(x, train_idx), t(y[train_idx].copy()), LazyInputs(x, val_idx), t(y[val_idx].copy()),
                      test, t(np.asarray(y_test, dtype=np.int64)), num_classes, mean, std)

"""User arrays in an .npz file: `x`, `y` and optionally `x_test`, `y_test`.

Every member is checked from its .npy header (dtype, shape, declared size) against limits before any
data is read, so a small upload that declares a huge array (a decompression bomb) is refused at once;
only then are the arrays read, and their content checked (finite inputs, labels in range).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.data.lazy import ArraySource, chunks
from nas.data.splits import DataError, as_channels_first, check_labels

ARRAYS = ("x", "y", "x_test", "y_test")


@dataclass(frozen=True)
class NpzLimits:
    max_bytes: int = 2 * 1024**3  # all arrays together, as declared (decompressed)
    max_classes: int = 10_000


def _member_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a .npy member's header, reading only the header's bytes."""
    with zf.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except ValueError as err:
            raise DataError(f"{path}: member {info.filename} is not a plain .npy array ({err})") from None
    return tuple(shape), dtype


def inspect_npz(path: str, limits: NpzLimits, source: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each wanted array's (shape, dtype), checked against `limits`, without reading any array data."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{source}: not an .npz file (a zip of .npy arrays): {err}") from None
    found: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    with zf:
        for info in zf.infolist():
            name = info.filename.removesuffix(".npy")
            if name not in ARRAYS:
                continue  # other members are never read
            shape, dtype = _member_header(zf, info, source)
            if dtype.hasobject or dtype.kind not in "biuf":
                raise DataError(f"{source}: array {name} has dtype {dtype}; only bool, integer and float arrays are read")
            found[name] = (shape, dtype)
        declared = sum(int(np.prod(s, dtype=np.int64)) * d.itemsize for s, d in found.values())
    if declared > limits.max_bytes:
        raise DataError(f"{source}: the arrays declare {declared:,} bytes, more than the limit of {limits.max_bytes:,}")
    return found


def checked_members(path: str, limits: NpzLimits, source: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The wanted members' (shape, dtype), after the checks that need no array data."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"npz file not found: {path}")
    found = inspect_npz(str(file), limits, source)
    missing = [k for k in ("x", "y") if k not in found]
    if missing:
        raise DataError(f"{source}: missing arrays {missing}; found {sorted(found)}")
    if ("x_test" in found) != ("y_test" in found):
        raise DataError(f"{source}: give both x_test and y_test, or neither")
    return found


def input_bytes(path: str, limits: NpzLimits | None = None) -> int:
    """What the file's inputs (x and x_test) take as float32, from their headers."""
    found = checked_members(path, limits or NpzLimits(), path)
    return sum(4 * int(np.prod(found[k][0], dtype=np.int64)) for k in ("x", "x_test") if k in found)


def npz_sources(
    path: str, kind: str | None, limits: NpzLimits | None = None, layout: str = "auto", source: str | None = None,
) -> tuple[ArraySource, np.ndarray, ArraySource | None, np.ndarray | None]:
    """The file's inputs as memory-mapped sources (read a batch at a time) and its labels, checked like
    `load_npz` checks the arrays it reads, one chunk at a time; `source` names the file in messages."""
    limits = limits or NpzLimits()
    name = source or path
    found = checked_members(path, limits, name)
    labels = _read(path, [k for k in ("y", "y_test") if k in found], name)
    x = _source(path, "x", found["x"][0], kind, layout, name)
    x_test = _source(path, "x_test", found["x_test"][0], kind, layout, name) if "x_test" in found else None
    y, y_test = _checked_labels(labels, len(x), len(x_test) if x_test else None, limits, name)
    _same_example(x.shape, x_test.shape if x_test else None, name)
    return x, y, x_test, y_test


def unpacked_copies(path: str) -> list[Path]:
    """The .npy files `npz_sources` unpacked beside a compressed file."""
    file = Path(path)
    return [f for f in (file.with_name(f"{file.name}.{name}.npy") for name in ARRAYS) if f.exists()]


def _source(path: str, name: str, shape: tuple[int, ...], kind: str | None, layout: str, file: str) -> ArraySource:
    """Member `name` (of `shape`, from its header) as a source, checked one chunk at a time."""
    where = file if name == "x" else f"{file} ({name})"
    if len(shape) < 2 or shape[0] == 0:
        raise DataError(f"{where}: no examples" if shape and shape[0] == 0 else
                        f"{where}: inputs must be (N,L), (N,C,L), (N,H,W), (N,C,H,W) or (N,H,W,C); got shape {shape}")
    source = ArraySource(path, name, layout, kind)
    for x in chunks(source, np.arange(len(source))):
        if not np.isfinite(x).all():
            raise DataError(f"{where}: inputs contain NaN or infinite values")
    return source


def load_npz(
    path: str, kind: str | None, limits: NpzLimits | None = None, source: str | None = None, layout: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The arrays of an .npz file, checked; `source` names the file in messages (default: its path)."""
    limits = limits or NpzLimits()
    name = source or path
    arrays = _read(path, list(checked_members(path, limits, name)), name)
    x = _inputs(arrays["x"], kind, name, layout)
    x_test = _inputs(arrays["x_test"], kind, f"{name} (x_test)", layout) if "x_test" in arrays else None
    y, y_test = _checked_labels(arrays, len(x), len(x_test) if x_test is not None else None, limits, name)
    _same_example(x.shape[1:], x_test.shape[1:] if x_test is not None else None, name)
    return x, y, x_test, y_test


def _read(path: str, names: list[str], source: str) -> dict[str, np.ndarray]:
    """The members `names` of the file, read whole; never unpickled."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in names}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{source}: not a readable .npz file of plain arrays ({err})") from None


def _checked_labels(arrays: dict[str, np.ndarray], n: int, n_test: int | None, limits: NpzLimits,
                    source: str) -> tuple[np.ndarray, np.ndarray | None]:
    """`y` for `n` inputs and, with a test split of `n_test`, `y_test`, checked."""
    y = _labels(arrays["y"], n, limits, source)
    if n_test is None:
        return y, None
    return y, _labels(arrays["y_test"], n_test, limits, f"{source} (y_test)", need_two=False)


def _same_example(example: tuple[int, ...], test: tuple[int, ...] | None, source: str) -> None:
    if test is not None and tuple(test) != tuple(example):
        raise DataError(f"{source}: x_test has shape {tuple(test)} per example, x has {tuple(example)}")


def _inputs(x: np.ndarray, kind: str | None, source: str, layout: str) -> np.ndarray:
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"{source}: no examples")
    x = as_channels_first(x, kind, source, layout)
    if not np.isfinite(x).all():
        raise DataError(f"{source}: inputs contain NaN or infinite values")
    return x


def _labels(y: np.ndarray, n: int, limits: NpzLimits, source: str, need_two: bool = True) -> np.ndarray:
    y = check_labels(y, n, source)
    if len(y) and y.max() >= limits.max_classes:
        raise DataError(f"{source}: label {int(y.max())} is not below the limit of {limits.max_classes:,} classes")
    if need_two and len(np.unique(y)) < 2:
        raise DataError(f"{source}: labels name a single class; a classifier needs at least 2")
    return y

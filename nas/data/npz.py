"""User arrays in an .npz file: `x`, `y` and optionally `x_test`, `y_test`."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from nas.data.splits import DataError, as_channels_first, check_labels


def load_npz(path: str, kind: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    file = Path(path)
    if not file.is_file():
        raise DataError(f"npz file not found: {path}")
    try:
        with np.load(file, allow_pickle=False) as data:  # never unpickle user files
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: not a readable .npz file of plain arrays ({err})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DataError(f"{path}: missing arrays {missing}; found {sorted(arrays)}")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path}: give both x_test and y_test, or neither")
    x = as_channels_first(arrays["x"], kind, path)
    y = check_labels(arrays["y"], len(x), path)
    x_test = y_test = None
    if "x_test" in arrays:
        x_test = as_channels_first(arrays["x_test"], kind, f"{path} (x_test)")
        y_test = check_labels(arrays["y_test"], len(x_test), f"{path} (y_test)")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"{path}: x_test has shape {x_test.shape[1:]} per example, x has {x.shape[1:]}")
    return x, y, x_test, y_test

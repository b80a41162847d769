"""Image folders: one sub-folder per class, images read with Pillow (decoded on demand by `ImageSource`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nas.data.lazy import ImageSource
from nas.data.splits import DataError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def folder_source(path: str, image_size: int | None) -> tuple[ImageSource, np.ndarray, list[str]]:
    """The folder's images as a source of (C, S, S) examples in [0, 1] (C = 1 if every image is greyscale,
    else 3; S = `image_size`, default the first image's width), their labels and the class names. Only the
    images' headers are read here."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"image folder not found: {path}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DataError(f"{path}: needs one sub-folder per class, at least 2; found {classes}")
    files = {c: sorted(f for f in (root / c).rglob("*") if f.suffix.lower() in EXTENSIONS) for c in classes}
    empty = [c for c, fs in files.items() if not fs]
    if empty:
        raise DataError(f"{path}: class folders without images: {empty}")
    every = [f for c in classes for f in files[c]]
    labels = np.asarray([label for label, c in enumerate(classes) for _ in files[c]], dtype=np.int64)
    modes, size = [], image_size
    for f in every:
        try:
            with Image.open(f) as im:  # the header only: no pixels are decoded
                modes.append(im.mode)
                size = size or im.size[0]
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"{f}: not a readable image ({err})") from None
    assert size is not None
    return ImageSource(every, size, grey=all(m in ("L", "1") for m in modes)), labels, classes

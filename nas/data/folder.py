"""Image folders: one sub-folder per class, images read with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nas.data.splits import DataError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_folder(path: str, image_size: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images (N, C, S, S) in [0, 1] (C = 1 if every image is greyscale, else 3), labels, class names."""
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
    images: list[Image.Image] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        for f in files[cls]:
            try:
                with Image.open(f) as im:
                    images.append(im.convert("L") if im.mode in ("L", "1") else im.convert("RGB"))
            except (UnidentifiedImageError, OSError) as err:
                raise DataError(f"{f}: not a readable image ({err})") from None
            labels.append(label)
    size = image_size or images[0].size[0]
    grey = all(im.mode == "L" for im in images)
    arrays = []
    for image in images:
        pixels = image.convert("L" if grey else "RGB")
        if pixels.size != (size, size):
            pixels = pixels.resize((size, size), Image.Resampling.BILINEAR)
        a = np.asarray(pixels, dtype=np.float32) / 255.0
        arrays.append(a[None] if grey else a.transpose(2, 0, 1))
    return np.stack(arrays), np.asarray(labels, dtype=np.int64), classes

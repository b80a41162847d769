"""Datasets: built-in `digits`, .npz arrays and image folders, split and normalized the same way."""

from __future__ import annotations

import math

import numpy as np

from nas.data.digits import DIGITS_COUNT, load_digits
from nas.data.folder import folder_source
from nas.data.lazy import lazy_splits
from nas.data.npz import input_bytes, load_npz, npz_sources
from nas.data.splits import DataError, DataSplits, held_out_size, make_splits
from nas.schemas import DatasetConfig, SearchConfig
from search_spaces import SearchSpaceSpec, get_space

__all__ = ["DataError", "DataSplits", "input_contract", "load_dataset", "prepare", "usage_example"]


def prepare(config: SearchConfig) -> tuple[DataSplits, SearchSpaceSpec]:
    """Load the dataset and re-target the config's space to its input shape and classes."""
    data = load_dataset(config.dataset)
    space = get_space(config.space).with_input(data.input_shape, data.num_classes)
    return data, space


IN_MEMORY_LIMIT = 1024**3  # float32 inputs up to this size are held in memory when `in_memory` is not given


def held(cfg: DatasetConfig, input_bytes: int) -> bool:
    """Whether inputs of `input_bytes` (as float32) are held in memory (fast) rather than read a batch at a time."""
    return cfg.in_memory if cfg.in_memory is not None else input_bytes <= IN_MEMORY_LIMIT


def load_dataset(cfg: DatasetConfig) -> DataSplits:
    """Load and split a dataset. Inputs stay raw; `DataSplits.normalized()` gives model inputs."""
    splits = _load(cfg)
    splits.augment = cfg.augment
    return splits


def _load(cfg: DatasetConfig) -> DataSplits:
    split = (cfg.val_fraction, cfg.test_fraction, cfg.seed)
    if cfg.name == "digits":
        x, y = load_digits()
        return make_splits(x, y, None, None, *split, "digits")
    assert cfg.path
    if cfg.name == "folder":
        images, y, _ = folder_source(cfg.path, cfg.image_size)
        if held(cfg, 4 * len(images) * math.prod(images.shape)):
            return make_splits(images.read(np.arange(len(images))), y, None, None, *split, cfg.path)
        return lazy_splits(images, y, None, None, *split, cfg.path)
    if held(cfg, input_bytes(cfg.path)):
        x, y, x_test, y_test = load_npz(cfg.path, cfg.kind, layout=cfg.layout)
        _square(x.shape[1:], cfg.path)
        return make_splits(x, y, x_test, y_test, *split, cfg.path)
    arrays, y, tests, y_test = npz_sources(cfg.path, cfg.kind, layout=cfg.layout)
    _square(arrays.shape, cfg.path)
    return lazy_splits(arrays, y, tests, y_test, *split, cfg.path)


def _square(example: tuple[int, ...], source: str) -> None:
    """Images must be square (the spaces' inputs are)."""
    if len(example) == 3 and example[1] != example[2]:
        raise DataError(f"{source}: images must be square, got {example[1]}x{example[2]} (npz images stored "
                        "channels-last: set layout: nhwc)")


def input_contract(cfg: DatasetConfig, input_shape: tuple[int, ...]) -> dict[str, object]:
    """What an exported model expects as input: the dataset exactly as the search loaded it."""
    layout = "(batch, channels, height, width)" if len(input_shape) == 3 else "(batch, channels, length)"
    if cfg.name == "digits":
        transform = "sklearn.datasets.load_digits().images / 16.0 with a channel axis: pixel values in [0, 1]"
    elif cfg.name == "npz":
        transform = ("the .npz file's `x` array as stored, as float32 (an (N, H, W) or (N, L) array gains a "
                     "channel axis at 1; (N, H, W, C) images are transposed to channels first); no scaling")
    else:
        transform = (f"images resized to {input_shape[-1]}x{input_shape[-1]}, pixel values / 255 (in [0, 1]), "
                     "channels first (1 channel if every image was greyscale, else RGB)")
    return {"shape": ["batch", *input_shape], "dtype": "float32", "layout": layout, "transform": transform,
            "normalization": "inside the model: feed inputs as the transform gives them, not standardized"}


def usage_example(cfg: DatasetConfig, test_accuracy: float | None) -> str | None:
    """Python that rebuilds a built-in dataset's test split and scores an exported model on it."""
    if cfg.name != "digits":
        return None
    n_test = held_out_size(DIGITS_COUNT, cfg.test_fraction)  # the first n_test of make_splits' permutation
    measured = f"  # the search measured {test_accuracy:.4f}" if test_accuracy is not None else ""
    return (
        "import numpy as np, torch\n"
        "from sklearn.datasets import load_digits\n"
        "from model import load_model\n\n"
        "digits = load_digits()\n"
        f"test = np.random.default_rng({cfg.seed}).permutation(len(digits.target))[:{n_test}]  # the search's test split\n"
        "x = torch.tensor(digits.images[test, None] / 16.0, dtype=torch.float32)\n"
        "with torch.no_grad():\n"
        "    accuracy = (load_model()(x).argmax(1).numpy() == digits.target[test]).mean()\n"
        f"print(f\"test accuracy {{accuracy:.4f}}\"){measured}\n"
    )

"""Datasets: built-in `digits`, .npz arrays and image folders, split and normalized the same way."""

from __future__ import annotations

import math

from nas.data.digits import DIGITS_COUNT, load_digits
from nas.data.folder import folder_source, load_folder
from nas.data.lazy import Source, lazy_splits
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


def in_memory(cfg: DatasetConfig) -> bool:
    """Whether the dataset's inputs are held in memory (fast) rather than read a batch at a time."""
    if cfg.in_memory is not None or cfg.name == "digits":
        return cfg.in_memory is not False
    assert cfg.path
    if cfg.name == "npz":
        return input_bytes(cfg.path) <= IN_MEMORY_LIMIT
    source, _, _ = folder_source(cfg.path, cfg.image_size)
    return 4 * len(source) * math.prod(source.shape) <= IN_MEMORY_LIMIT


def load_dataset(cfg: DatasetConfig) -> DataSplits:
    """Load and split a dataset. Inputs stay raw; `DataSplits.normalized()` gives model inputs."""
    splits = _load(cfg) if cfg.name == "digits" or in_memory(cfg) else _stream(cfg)
    splits.augment = cfg.augment
    return splits


def _stream(cfg: DatasetConfig) -> DataSplits:
    """Splits whose inputs are read a batch at a time: a memory-mapped npz, or images decoded when read."""
    assert cfg.path
    x: Source
    x_test: Source | None = None
    y_test = None
    if cfg.name == "npz":
        x, y, x_test, y_test = npz_sources(cfg.path, cfg.kind, layout=cfg.layout)
    else:
        x, y, _ = folder_source(cfg.path, cfg.image_size)
    if len(x.shape) == 3 and x.shape[1] != x.shape[2]:
        raise DataError(f"{cfg.path}: images must be square, got {x.shape[1]}x{x.shape[2]} (folder images: set "
                        "image_size to resize; npz images stored channels-last: set layout: nhwc)")
    return lazy_splits(x, y, x_test, y_test, cfg.val_fraction, cfg.test_fraction, cfg.seed, cfg.path)


def _load(cfg: DatasetConfig) -> DataSplits:
    x_test = y_test = None
    if cfg.name == "digits":
        x, y = load_digits()
        source = "digits"
    elif cfg.name == "npz":
        assert cfg.path
        x, y, x_test, y_test = load_npz(cfg.path, cfg.kind, layout=cfg.layout)
        source = cfg.path
    else:
        assert cfg.path
        x, y, _ = load_folder(cfg.path, cfg.image_size)
        source = cfg.path
    if x.ndim == 4 and x.shape[2] != x.shape[3]:
        raise DataError(f"{source}: images must be square, got {x.shape[2]}x{x.shape[3]} (folder images: set image_size to resize; npz images stored channels-last: set layout: nhwc)")
    return make_splits(x, y, x_test, y_test, cfg.val_fraction, cfg.test_fraction, cfg.seed, source)


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

"""Datasets: built-in `digits`, .npz arrays and image folders, split and normalized the same way."""

from __future__ import annotations

from nas.data.digits import load_digits
from nas.data.folder import load_folder
from nas.data.npz import load_npz
from nas.data.splits import DataError, DataSplits, make_splits
from nas.schemas import DatasetConfig, SearchConfig
from search_spaces import SearchSpaceSpec, get_space

__all__ = ["DataError", "DataSplits", "load_dataset", "prepare"]


def prepare(config: SearchConfig) -> tuple[DataSplits, SearchSpaceSpec]:
    """Load the dataset and re-target the config's space to its input shape and classes."""
    data = load_dataset(config.dataset)
    space = get_space(config.space).with_input(data.input_shape, data.num_classes)
    return data, space


def load_dataset(cfg: DatasetConfig) -> DataSplits:
    """Load and split a dataset. Inputs stay raw; `DataSplits.normalized()` gives model inputs."""
    x_test = y_test = None
    if cfg.name == "digits":
        x, y = load_digits()
        source = "digits"
    elif cfg.name == "npz":
        assert cfg.path
        x, y, x_test, y_test = load_npz(cfg.path, cfg.kind)
        source = cfg.path
    else:
        assert cfg.path
        x, y, _ = load_folder(cfg.path, cfg.image_size)
        source = cfg.path
    if x.ndim == 4 and x.shape[2] != x.shape[3]:
        raise DataError(f"{source}: images must be square, got {x.shape[2]}x{x.shape[3]} (set image_size to resize)")
    return make_splits(x, y, x_test, y_test, cfg.val_fraction, cfg.test_fraction, cfg.seed, source)

"""DataSplits: train / validation / test tensors with the statistics computed on the training split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import numpy as np
import torch
from torch import Tensor

from nas.data.augment import augment
from nas.schemas import AugmentConfig
from search_spaces.errors import UserError

if TYPE_CHECKING:
    from nas.data.lazy import LazyInputs


class DataError(UserError):
    """A dataset cannot be used; the message says what is wrong with it."""


Inputs = Union[Tensor, "LazyInputs"]  # in memory, or read a batch at a time (nas/data/lazy.py)


@dataclass
class DataSplits:
    x_train: Inputs
    y_train: Tensor
    x_val: Inputs
    y_val: Tensor
    x_test: Inputs
    y_test: Tensor
    num_classes: int
    mean: list[float]  # per channel, from the training split
    std: list[float]
    augment: AugmentConfig | None = None  # applied to training batches (`train_batch`)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def kind(self) -> str:
        return "image" if self.x_train.dim() == 4 else "sequence"

    def train_batch(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """The training examples at `idx`, augmented when the dataset says so, and their labels."""
        x = self.x_train[idx]
        return (augment(x, self.augment) if self.augment is not None else x), self.y_train[idx]

    def normalize(self, x: Inputs) -> Inputs:
        if not isinstance(x, Tensor):
            return x.normalized(self.mean, self.std)  # normalized as each batch is read
        shape = (1, len(self.mean)) + (1,) * (x.dim() - 2)
        mean = torch.tensor(self.mean).reshape(shape)
        std = torch.tensor(self.std).reshape(shape)
        return (x - mean) / std

    def to(self, device: torch.device | str) -> DataSplits:
        """The same splits with every tensor on `device` (inputs read a batch at a time go there per batch)."""
        return DataSplits(self.x_train.to(device), self.y_train.to(device), self.x_val.to(device), self.y_val.to(device),
                          self.x_test.to(device), self.y_test.to(device), self.num_classes, self.mean, self.std,
                          self.augment)

    def normalized(self) -> DataSplits:
        """The same splits with inputs normalized (what training and evaluation consume)."""
        n = self.normalize
        return DataSplits(n(self.x_train), self.y_train, n(self.x_val), self.y_val, n(self.x_test), self.y_test,
                          self.num_classes, self.mean, self.std, self.augment)


def channels_last(shape: tuple[int, ...], layout: str) -> bool:
    """Whether 4-D images of `shape` are (N, H, W, C): named so, or (auto) a last axis of 1, 3 or 4 channels
    after two equal spatial axes that are not themselves such a channel count."""
    if layout != "auto":
        return layout == "nhwc"
    return shape[-1] in (1, 3, 4) and shape[1] == shape[2] and shape[1] not in (1, 3, 4)


def as_channels_first(x: np.ndarray, kind: str | None, source: str, layout: str = "auto") -> np.ndarray:
    """(N,H,W) / (N,C,H,W) / (N,H,W,C) images and (N,L) / (N,C,L) sequences -> channels-first float32."""
    if x.ndim == 2:
        return x[:, None, :].astype(np.float32)  # (N, L) -> (N, 1, L)
    if x.ndim == 3:
        is_image = kind == "image" or (kind is None and x.shape[1] == x.shape[2])
        return (x[:, None] if is_image else x).astype(np.float32)
    if x.ndim == 4:
        if kind == "sequence":
            raise DataError(f"{source}: 4-D inputs {x.shape} are images, but kind 'sequence' was given")
        if channels_last(x.shape, layout):
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=np.float32)
    raise DataError(f"{source}: inputs must be (N,L), (N,C,L), (N,H,W), (N,C,H,W) or (N,H,W,C); got shape {x.shape}")


def check_labels(y: np.ndarray, n: int, source: str) -> np.ndarray:
    if y.ndim != 1:
        raise DataError(f"{source}: labels must be a 1-D array of class indices, got shape {y.shape}")
    if len(y) != n:
        raise DataError(f"{source}: {n} inputs but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise DataError(f"{source}: labels must be integer class indices")
        y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise DataError(f"{source}: labels must be >= 0, found {int(y.min())}")
    return y.astype(np.int64)


def held_out_size(n: int, fraction: float) -> int:
    """How many of `n` examples a split of `fraction` holds (at least one)."""
    return max(1, int(round(n * fraction)))


def class_count(y: np.ndarray, y_test: np.ndarray | None, source: str) -> int:
    """The number of classes the labels name; every class needs a training example, and there must be two."""
    num_classes = int(max(y.max(), y_test.max() if y_test is not None and len(y_test) else 0)) + 1
    counts = np.bincount(y, minlength=num_classes)
    empty = [c for c in range(num_classes) if counts[c] == 0]
    if empty:
        raise DataError(f"{source}: classes {empty} have no training examples (labels must be 0..{num_classes - 1})")
    if num_classes < 2:
        raise DataError(f"{source}: need at least 2 classes")
    return num_classes


def split_rows(n: int, test_given: bool, val_fraction: float, test_fraction: float, seed: int,
               source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Seeded (train, validation, test) row indices of `n` examples; test is None when a test split is given."""
    order = np.random.default_rng(seed).permutation(n)
    test_idx = None
    if not test_given:
        n_test = held_out_size(n, test_fraction)
        test_idx, order = order[:n_test], order[n_test:]
    n_val = held_out_size(len(order), val_fraction)
    val_idx, train_idx = order[:n_val], order[n_val:]
    if len(train_idx) < 2:
        raise DataError(f"{source}: too few examples ({n}) to split into train / validation / test")
    return train_idx, val_idx, test_idx


def make_splits(
    x: np.ndarray, y: np.ndarray, x_test: np.ndarray | None, y_test: np.ndarray | None,
    val_fraction: float, test_fraction: float, seed: int, source: str,
) -> DataSplits:
    """Seeded, stratified-by-shuffle splits; normalization statistics from the training part only."""
    if not np.isfinite(x).all():
        raise DataError(f"{source}: inputs contain NaN or infinite values")
    num_classes = class_count(y, y_test, source)
    train_idx, val_idx, test_idx = split_rows(len(y), x_test is not None, val_fraction, test_fraction, seed, source)
    if test_idx is not None:
        x_test, y_test = x[test_idx], y[test_idx]
    x_train = x[train_idx]
    axes = (0,) + tuple(range(2, x.ndim))
    mean = x_train.mean(axis=axes)
    std = x_train.std(axis=axes) + 1e-6
    t = torch.from_numpy
    return DataSplits(
        t(x_train.copy()), t(y[train_idx].copy()), t(x[val_idx].copy()), t(y[val_idx].copy()),
        t(np.ascontiguousarray(x_test, dtype=np.float32)), t(np.asarray(y_test, dtype=np.int64)),
        num_classes, [float(m) for m in mean], [float(s) for s in std],
    )

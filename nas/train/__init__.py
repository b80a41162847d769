"""Supernet training (sandwich rule, in-place distillation) and atomic checkpoints."""

from nas.train.checkpoint import atomic_write, load_checkpoint, save_checkpoint, save_tensors
from nas.train.trainer import CHECKPOINT, train_supernet

__all__ = ["CHECKPOINT", "atomic_write", "load_checkpoint", "save_checkpoint", "save_tensors", "train_supernet"]

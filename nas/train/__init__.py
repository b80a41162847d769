"""Supernet training (sandwich rule, in-place distillation) and atomic checkpoints."""

from nas.train.checkpoint import load_checkpoint, save_checkpoint
from nas.train.trainer import CHECKPOINT, train_supernet

__all__ = ["CHECKPOINT", "load_checkpoint", "save_checkpoint", "train_supernet"]

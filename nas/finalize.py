"""Finalize: train front archs to their best as stand-alone extracted networks.

A finalist starts from its inherited weights, re-initialised, or both (`init: auto`: the pipeline keeps the one
that validates better). Training runs until validation accuracy has not improved for `patience` epochs (the
learning rate drops by 0.3x after a third of them without gain), at most `epochs`, and within the phase's time
allowance; the model keeps its best epoch's weights. `FineTuner` is where the finalists train:
`local_fine_tuner` one after another in this process (the `nas search` CLI), splitting the allowance as it
goes; the service trains each as a Ray Tune trial (workers/tune_finalize.py).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from nas.budget import Deadline
from nas.data import DataSplits
from nas.device import autocast, grad_scaler
from nas.evaluate import accuracy
from nas.progress import Cancelled, Reporter
from nas.schemas import FinalizeConfig

# (epoch, validation accuracy after it) -> None
EpochCallback = Callable[[int, float], None]


def fine_tune(
    model: nn.Module, data: DataSplits, cfg: FinalizeConfig, reporter: Reporter, seed: int = 0,
    amp: torch.dtype | None = None, on_epoch: EpochCallback | None = None, seconds: float | None = None,
) -> dict[str, float]:
    """Train `model` (in place, on the data's device; forward passes in `amp` autocast when given) on normalized
    `data` until cfg.patience epochs bring no better validation accuracy, for at most cfg.epochs and `seconds`;
    the model ends with its best epoch's weights. Returns val accuracy before / after, the epochs run and the
    seconds taken."""
    device = data.x_train.device
    deadline = Deadline(seconds)
    started = time.monotonic()
    scaler = grad_scaler(device, amp)
    before = best = accuracy(model, data.x_val, data.y_val)
    best_state = copy.deepcopy(model.state_dict())
    g = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.3, patience=max(1, cfg.patience // 3))
    epochs = stale = 0
    while epochs < cfg.epochs and stale < cfg.patience and not deadline.passed():
        model.train()
        order = torch.randperm(n, generator=g)
        for start in range(0, n, cfg.batch_size):
            if reporter.should_stop():
                raise Cancelled("cancelled during fine-tuning")
            if deadline.passed():
                break  # out of time: the epoch ends here and is validated like any other
            idx = order[start : start + cfg.batch_size]
            if len(idx) < 2:
                continue  # batch norm needs more than one sample
            x, y = data.train_batch(idx)
            with autocast(device, amp):
                loss = F.cross_entropy(model(x).float(), y, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        epochs += 1
        val = accuracy(model, data.x_val, data.y_val)
        sched.step(val)
        if on_epoch:
            on_epoch(epochs, val)
        if val > best:
            best, best_state, stale = val, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
    model.load_state_dict(best_state)
    model.eval()
    return {"val_accuracy_before": before, "val_accuracy": best, "epochs": float(epochs),
            "seconds": time.monotonic() - started}


def fresh(model: nn.Module, seed: int) -> nn.Module:
    """`model` with every weight re-initialised (its modules' own initialisation), for training from scratch."""
    torch.manual_seed(seed)
    for module in model.modules():
        if module is not model and hasattr(module, "reset_parameters"):
            module.reset_parameters()  # type: ignore[operator]
    return model


@dataclass(frozen=True)
class Trained:
    """What fine-tuning one finalist gave: its metrics and, through Ray Tune, the trial that trained it."""

    metrics: dict[str, float]
    trial_id: str | None = None


class FineTuner(Protocol):
    def __call__(self, phase: str, models: dict[str, nn.Module], data: DataSplits, cfg: FinalizeConfig,
                 reporter: Reporter, amp: torch.dtype | None, seconds: float | None = None) -> dict[str, Trained]:
        """Train every model (by key: an arch id, or `<arch id>:<init>`) for `phase` ('finetune', 'trust')
        within `seconds` of wall time in all; each ends, in place, with its trained weights."""
        ...


def local_fine_tuner(phase: str, models: dict[str, nn.Module], data: DataSplits, cfg: FinalizeConfig,
                     reporter: Reporter, amp: torch.dtype | None, seconds: float | None = None) -> dict[str, Trained]:
    """One model after another, in this process; each gets an equal part of what is left of `seconds`."""
    out = {}
    deadline = Deadline(seconds)
    for i, (key, model) in enumerate(models.items()):
        left = deadline.left()
        share = None if left is None else left / (len(models) - i)
        out[key] = Trained(fine_tune(model, data, cfg, reporter, seed=i, amp=amp, seconds=share))
        reporter.progress(phase, i + 1, len(models), {"val_accuracy": out[key].metrics["val_accuracy"]})
    return out

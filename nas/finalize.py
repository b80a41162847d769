"""Finalize: fine-tune front archs as stand-alone extracted networks, starting from inherited weights.

Training stops early once validation accuracy has not improved for `patience` epochs, and the model keeps
its best epoch's weights. `FineTuner` is where the finalists train: `LocalFineTuner` one after another in
this process (the `nas search` CLI); the service trains each as a Ray Tune trial (workers/tune_finalize.py).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from nas.data import DataSplits
from nas.device import autocast, grad_scaler
from nas.evaluate import accuracy
from nas.progress import Cancelled, Reporter
from nas.schemas import FinalizeConfig

# (epoch, validation accuracy after it) -> None
EpochCallback = Callable[[int, float], None]


def fine_tune(
    model: nn.Module, data: DataSplits, cfg: FinalizeConfig, reporter: Reporter, seed: int = 0,
    amp: torch.dtype | None = None, on_epoch: EpochCallback | None = None,
) -> dict[str, float]:
    """Train `model` (in place, on the data's device; forward passes in `amp` autocast when given) for up to
    cfg.epochs on normalized `data`, stopping after cfg.patience epochs without a better validation accuracy;
    the model ends with its best epoch's weights. Returns val accuracy before / after and the epochs run."""
    device = data.x_train.device
    scaler = grad_scaler(device, amp)
    before = best = accuracy(model, data.x_val, data.y_val)
    best_state = copy.deepcopy(model.state_dict())
    g = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    total = cfg.epochs * max(1, math.ceil(n / cfg.batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    epochs = stale = 0
    while epochs < cfg.epochs and stale < cfg.patience:
        model.train()
        order = torch.randperm(n, generator=g)
        for start in range(0, n, cfg.batch_size):
            if reporter.should_stop():
                raise Cancelled("cancelled during fine-tuning")
            idx = order[start : start + cfg.batch_size]
            if len(idx) < 2:
                continue  # batch norm needs more than one sample
            with autocast(device, amp):
                loss = F.cross_entropy(model(data.x_train[idx]).float(), data.y_train[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
        epochs += 1
        val = accuracy(model, data.x_val, data.y_val)
        if on_epoch:
            on_epoch(epochs, val)
        if val > best:
            best, best_state, stale = val, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
    model.load_state_dict(best_state)
    model.eval()
    return {"val_accuracy_before": before, "val_accuracy": best, "epochs": float(epochs)}


@dataclass(frozen=True)
class Trained:
    """What fine-tuning one finalist gave: its metrics and, through Ray Tune, the trial that trained it."""

    metrics: dict[str, float]
    trial_id: str | None = None


class FineTuner(Protocol):
    def __call__(self, phase: str, models: dict[str, nn.Module], data: DataSplits, cfg: FinalizeConfig,
                 reporter: Reporter, amp: torch.dtype | None) -> dict[str, Trained]:
        """Train every model (by arch id) for `phase` ('finetune', 'trust'); each ends, in place, with its
        trained weights."""
        ...


def local_fine_tuner(phase: str, models: dict[str, nn.Module], data: DataSplits, cfg: FinalizeConfig,
                     reporter: Reporter, amp: torch.dtype | None) -> dict[str, Trained]:
    """One model after another, in this process."""
    out = {}
    for i, (arch_id, model) in enumerate(models.items()):
        out[arch_id] = Trained(fine_tune(model, data, cfg, reporter, seed=i, amp=amp))
        reporter.progress(phase, i + 1, len(models), {"val_accuracy": out[arch_id].metrics["val_accuracy"]})
    return out

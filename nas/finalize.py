"""Finalize: fine-tune front archs as stand-alone extracted networks, starting from inherited weights."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nas.data import DataSplits
from nas.device import autocast, grad_scaler
from nas.evaluate import accuracy
from nas.progress import Cancelled, Reporter
from nas.schemas import FinalizeConfig


def fine_tune(
    model: nn.Module, data: DataSplits, cfg: FinalizeConfig, reporter: Reporter, seed: int = 0,
    amp: torch.dtype | None = None,
) -> dict[str, float]:
    """Train `model` (in place, on the data's device; forward passes in `amp` autocast when given) for
    cfg.epochs on normalized `data`; returns val accuracy before / after."""
    device = data.x_train.device
    scaler = grad_scaler(device, amp)
    before = accuracy(model, data.x_val, data.y_val)
    g = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
    total = cfg.epochs * steps_per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    for _ in range(cfg.epochs):
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
    model.eval()
    return {"val_accuracy_before": before, "val_accuracy": accuracy(model, data.x_val, data.y_val)}

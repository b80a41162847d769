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
import functools
import time
from collections.abc import Callable, Mapping
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

# (epoch, validation accuracy after it, best validation accuracy so far) -> whether to stop after this epoch
EpochCallback = Callable[[int, float, float], bool | None]


def fine_tune(
    model: nn.Module, data: DataSplits, cfg: FinalizeConfig, reporter: Reporter, seed: int = 0,
    amp: torch.dtype | None = None, on_epoch: EpochCallback | None = None, seconds: float | None = None,
) -> dict[str, float]:
    """Train `model` (in place, on the data's device; forward passes in `amp` autocast when given) on normalized
    `data` until cfg.patience epochs bring no better validation accuracy, for at most cfg.epochs and `seconds`,
    or until `on_epoch` says stop; the model ends with its best epoch's weights. Returns val accuracy before /
    after, the epochs run and the seconds taken. Every random draw (batch order, dropout, augmentation) comes
    from `seed` alone: the process's random state is set aside meanwhile, so a training is the same whatever
    trained before it in the process (in `nas search` the starts train one after another; a Tune trial has a
    process of its own)."""
    device = data.x_train.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return _fine_tune(model, data, cfg, reporter, seed, amp, on_epoch, seconds)


def _fine_tune(model: nn.Module, data: DataSplits, cfg: FinalizeConfig, reporter: Reporter, seed: int,
               amp: torch.dtype | None, on_epoch: EpochCallback | None, seconds: float | None) -> dict[str, float]:
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
        if val > best:
            best, best_state, stale = val, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
        if on_epoch and on_epoch(epochs, val, best):
            break
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


class StartRace:
    """Successive halving between the starts of one finalist (`init: auto` trains each arch from its inherited
    weights and from scratch, and keeps the one that validates better): at `epoch`, a start whose best validation
    accuracy so far is below what another start of the same arch had by that epoch stops there, and the other
    trains on. As in ASHA, nobody waits: a start that reaches the epoch first, or level, trains on. Models are
    keyed `<arch id>:<init>`; a key without a sibling (one start per arch, the trust report's archs) never stops.
    A stopped start can never be the one kept: its best is below its sibling's best at that epoch."""

    def __init__(self, epoch: int):
        self.epoch = epoch
        self.best_at_epoch: dict[str, float] = {}
        self.halted: dict[str, int] = {}  # key -> the epoch it stopped after

    def stops(self, key: str, epoch: int, best: float) -> bool:
        """Whether the start `key`, after `epoch` epochs with `best` validation accuracy so far, stops here."""
        if not self.epoch or epoch != self.epoch:
            return False
        arch = key.partition(":")[0]
        self.best_at_epoch[key] = best
        if any(other > best for rival, other in self.best_at_epoch.items()
               if rival != key and rival.partition(":")[0] == arch):
            self.halted[key] = epoch
        return key in self.halted

    def on_epoch(self, key: str, epoch: int, _val: float, best: float) -> bool:
        """`stops` as `fine_tune`'s epoch callback, with the key bound first."""
        return self.stops(key, epoch, best)


def start_seed(models: Mapping[str, nn.Module], key: str) -> int:
    """The seed a model's fine-tuning draws from: its place among the phase's models, whichever fine-tuner runs it."""
    return list(models).index(key)


def halted_message(key: str, epoch: int, best: float) -> str:
    arch_id, _, init = key.partition(":")
    return (f"start {init} of finalist {arch_id[:12]} stopped after epoch {epoch}: its best validation accuracy "
            f"{best:.4f} is behind its other start's by then")


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
    """One model after another, in this process; each gets an equal part of what is left of `seconds` (a start
    that `StartRace` stops leaves its part to the rest)."""
    out = {}
    deadline = Deadline(seconds)
    race = StartRace(cfg.halving_epoch)
    for i, (key, model) in enumerate(models.items()):
        left = deadline.left()
        share = None if left is None else left / (len(models) - i)
        metrics = fine_tune(model, data, cfg, reporter, seed=start_seed(models, key), amp=amp, seconds=share,
                            on_epoch=functools.partial(race.on_epoch, key))
        if key in race.halted:
            reporter.message(halted_message(key, race.halted[key], metrics["val_accuracy"]))
            metrics["halted"] = 1.0
        out[key] = Trained(metrics)
        reporter.progress(phase, i + 1, len(models), {"val_accuracy": metrics["val_accuracy"]})
    return out

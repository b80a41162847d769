"""Evaluate subnets with inherited weights: BN recalibration, then accuracy; plus params, MACs, latency.

Each candidate is extracted from the supernet into a static network (a copy), so recalibrating
its BN statistics leaves the supernet untouched; results are cached by arch id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor, nn

from nas.data import DataSplits
from nas.data.splits import Inputs
from search_spaces import Arch, HybridSupernet, count
from search_spaces.memory import memory_metrics

LatencyFn = Callable[[Arch], float]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: Tensor, batch_size: int) -> None:
    """Re-estimate BN running statistics of `model` as an exact average over the batches of `x`."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    model.train()
    for start in range(0, len(x), batch_size):
        model(x[start : start + batch_size])
    model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: Inputs, y: Tensor, batch_size: int = 512) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        correct += (model(x[start : start + batch_size]).argmax(-1) == y[start : start + batch_size]).sum().item()
    return correct / max(1, len(y))


# who evaluated an arch in-process (the `nas search` CLI); a service search names its Ray worker
LOCAL_WORKER = "local"


class AccuracyScorer:
    """Validation accuracy of archs of one trained supernet: extract, recalibrate BN, score. Small enough to
    ship to evaluation workers (the supernet and the few tensors it needs, not the dataset)."""

    def __init__(self, supernet: HybridSupernet, calibration: Tensor, x_val: Inputs, y_val: Tensor, batch_size: int):
        self.supernet, self.calibration, self.x_val, self.y_val = supernet, calibration, x_val, y_val
        self.batch_size = batch_size

    def portable(self) -> AccuracyScorer:
        """This scorer with its validation inputs in memory, for workers on machines that may not have the
        dataset's file (a dataset read a batch at a time otherwise travels as its path)."""
        if isinstance(self.x_val, Tensor):
            return self
        return AccuracyScorer(self.supernet, self.calibration, self.x_val.materialize(), self.y_val, self.batch_size)

    def subnet(self, arch: Arch) -> nn.Module:
        """The static network of `arch` with inherited weights and recalibrated BN, in eval mode."""
        model = self.supernet.extract(arch).to(self.calibration.device)
        recalibrate_bn(model, self.calibration, self.batch_size)
        return model

    def val_accuracy(self, arch: Arch) -> float:
        return accuracy(self.subnet(arch), self.x_val, self.y_val)


class AccuracyPool(Protocol):
    """Where validation accuracies are computed: in-process, or a pool of workers (workers/evaluation_pool.py)."""

    size: int  # archs worth evaluating at once

    def accuracies(self, archs: list[Arch]) -> list[tuple[float, str]]:
        """(accuracy, the worker that computed it) per arch, in order."""
        ...

    def close(self) -> None: ...


class LocalPool:
    """Evaluates in this process, one arch at a time."""

    size = 1

    def __init__(self, scorer: AccuracyScorer, name: str = LOCAL_WORKER):
        self.scorer, self.name = scorer, name

    def accuracies(self, archs: list[Arch]) -> list[tuple[float, str]]:
        return [(self.scorer.val_accuracy(arch), self.name) for arch in archs]

    def close(self) -> None:
        pass


class Evaluator:
    """Scores archs of one trained supernet on one dataset (inputs already normalized)."""

    def __init__(
        self, supernet: HybridSupernet, data: DataSplits, bn_batches: int = 4, batch_size: int = 64,
        latency: LatencyFn | None = None, seed: int = 0,
    ):
        self.supernet, self.data, self.latency = supernet, data, latency
        g = torch.Generator().manual_seed(seed)
        n = min(len(data.y_train), bn_batches * batch_size)
        calibration = data.x_train[torch.randperm(len(data.y_train), generator=g)[:n]]
        self.scorer = AccuracyScorer(supernet, calibration, data.x_val, data.y_val, batch_size)
        self.cache: dict[str, dict[str, float]] = {}
        self.workers: dict[str, str] = {}

    def subnet(self, arch: Arch) -> nn.Module:
        """The static network of `arch` with inherited weights and recalibrated BN, in eval mode."""
        return self.scorer.subnet(arch)

    def cost(self, arch: Arch) -> dict[str, float]:
        """Metrics that need no data: params, MACs, peak_memory_mb (batch 1), weights_mb and, with a latency
        table, latency_ms."""
        counts = count(self.supernet.space, arch)
        metrics = {"params": float(counts.params), "macs": float(counts.macs)} | memory_metrics(self.supernet.space, arch)
        if self.latency is not None:
            metrics["latency_ms"] = float(self.latency(arch))
        return metrics

    def evaluate(self, arch: Arch) -> dict[str, float]:
        """accuracy (validation, 0..1), params, macs and latency_ms when a table is given."""
        return self.evaluate_many([arch])[0][0]

    def evaluate_many(self, archs: list[Arch], pool: AccuracyPool | None = None) -> list[tuple[dict[str, float], str]]:
        """(metrics, worker) per arch; the accuracies of archs not seen before come from `pool` (default: this
        process) at once, the costs from this process."""
        todo = list({a.id: a for a in archs if a.id not in self.cache}.values())
        scored = (pool or LocalPool(self.scorer)).accuracies(todo) if todo else []
        for arch, (acc, worker) in zip(todo, scored, strict=True):
            self.cache[arch.id] = {"accuracy": acc} | self.cost(arch)
            self.workers[arch.id] = worker
        return [(dict(self.cache[a.id]), self.workers.get(a.id, LOCAL_WORKER)) for a in archs]

    def test_accuracy(self, arch: Arch, model: nn.Module | None = None) -> float:
        """Held-out test accuracy of `arch` (inherited weights unless a fine-tuned model is given)."""
        return accuracy(model if model is not None else self.subnet(arch), self.data.x_test, self.data.y_test)

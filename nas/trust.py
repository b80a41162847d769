"""The trust report: does the supernet rank archs as stand-alone training does?

After a search, K of its candidates (front and off-front, spread over the supernet's accuracy range) are
re-initialised and trained from scratch; Kendall tau and Spearman rho between their supernet accuracy and
their stand-alone validation accuracy say how far the search's ranking can be trusted on this task. The
trainings go through a `FineTuner` (nas.finalize), so the service runs them as Ray Tune trials.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, Field
from scipy.stats import kendalltau, spearmanr

from nas.data import DataSplits
from nas.evaluate import Evaluator
from nas.finalize import FineTuner, fresh
from nas.progress import Reporter
from nas.schemas import Candidate, FinalizeConfig, TrustConfig


class TrustPoint(BaseModel):
    arch_id: str
    on_front: bool
    supernet_accuracy: float = Field(description="validation accuracy with inherited weights")
    standalone_accuracy: float = Field(description="validation accuracy trained from scratch")
    epochs: float
    trial_id: str | None = None


class TrustReport(BaseModel):
    kendall_tau: float
    spearman_rho: float
    epochs: int = Field(description="the stand-alone schedule: at most this many epochs, early stopping")
    points: list[TrustPoint]


def pick_archs(candidates: list[Candidate], front: list[Candidate], k: int) -> list[Candidate]:
    """Up to `k` distinct candidates: half from the front, the rest off it, each half spread evenly over its
    supernet-accuracy range (so the report covers good and poor archs alike)."""
    front_ids = {c.arch_id for c in front}
    on = sorted(front, key=lambda c: c.metrics["accuracy"])
    off = sorted((c for c in candidates if c.arch_id not in front_ids and c.feasible),
                 key=lambda c: c.metrics["accuracy"])
    take_on = min(len(on), max(k // 2, k - len(off)))
    return _spread(on, take_on) + _spread(off, k - take_on)


def _spread(ranked: list[Candidate], n: int) -> list[Candidate]:
    if n <= 0 or not ranked:
        return []
    if n >= len(ranked):
        return list(ranked)
    return [ranked[round(i * (len(ranked) - 1) / (n - 1))] for i in range(n)] if n > 1 else [ranked[-1]]


def trust_report(candidates: list[Candidate], front: list[Candidate], evaluator: Evaluator, data: DataSplits,
                 cfg: TrustConfig, tuner: FineTuner, reporter: Reporter, amp: torch.dtype | None,
                 seconds: float | None = None) -> TrustReport | None:
    """Train the picked archs from scratch (through `tuner`, within `seconds` in all) and compare the two
    rankings; None with fewer than 3 archs to compare."""
    picked = pick_archs(candidates, front, cfg.archs)
    if len(picked) < 3:
        reporter.message(f"no trust report: only {len(picked)} candidates to compare (3 needed)")
        return None
    supernet, device = evaluator.supernet, data.x_train.device
    models = {c.arch_id: fresh(supernet.extract(supernet.space.parse(c.arch)).to(device), seed=i)
              for i, c in enumerate(picked)}  # BN statistics are reset too: no recalibration to do
    recipe = FinalizeConfig(epochs=cfg.epochs, patience=cfg.patience, lr=cfg.lr, batch_size=cfg.batch_size)
    reporter.phase("trust", len(picked))
    trained = tuner("trust", models, data, recipe, reporter, amp, seconds)
    front_ids = {c.arch_id for c in front}
    points = [TrustPoint(arch_id=c.arch_id, on_front=c.arch_id in front_ids, supernet_accuracy=c.metrics["accuracy"],
                         standalone_accuracy=trained[c.arch_id].metrics["val_accuracy"],
                         epochs=trained[c.arch_id].metrics["epochs"], trial_id=trained[c.arch_id].trial_id)
              for c in picked]
    ours, theirs = [p.supernet_accuracy for p in points], [p.standalone_accuracy for p in points]
    tau, rho = kendalltau(ours, theirs).statistic, spearmanr(ours, theirs).statistic
    report = TrustReport(kendall_tau=_finite(tau), spearman_rho=_finite(rho), epochs=cfg.epochs, points=points)
    reporter.message(f"trust report: Kendall tau {report.kendall_tau:.3f}, Spearman rho {report.spearman_rho:.3f} "
                     f"over {len(points)} archs trained from scratch")
    return report


def _finite(value: float) -> float:
    """A rank correlation is undefined (nan) when one side is constant: report 0, no agreement shown."""
    return float(value) if value == value else 0.0

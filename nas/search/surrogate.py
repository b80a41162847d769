"""An accuracy predictor (Once-for-All style) and the pre-screening it drives.

`AccuracyPredictor` fits gradient-boosted trees (scikit-learn) on each evaluated arch's one-hot encoding
plus its log MACs and params, predicting supernet accuracy. `Screened` wraps a strategy: once enough archs
are evaluated, each ask draws `factor` proposals from the wrapped strategy, scores them with the predictor
(accuracy) and the analytic costs, and hands on the one of best Pareto rank against the front so far; the
others are discarded (the strategy never learns predicted metrics as if they were measured). So many more
archs are considered per real evaluation. `held_out_quality` is the predictor's k-fold RMSE and Kendall tau,
reported in the result.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy.stats import kendalltau
from sklearn.ensemble import GradientBoostingRegressor

from nas.search.pareto import hypervolume, non_dominated_sort
from nas.search.strategies import Strategy
from search_spaces import Arch, SearchSpaceSpec

CostFn = Callable[[Arch], dict[str, float]]


class AccuracyPredictor:
    def __init__(self, space: SearchSpaceSpec, seed: int = 0):
        self.space, self.seed = space, seed
        self.model: GradientBoostingRegressor | None = None

    def features(self, archs: Sequence[Arch], costs: Sequence[Mapping[str, float]]) -> np.ndarray:
        sizes = [[math.log1p(c["macs"]), math.log1p(c["params"])] for c in costs]
        return np.hstack([np.stack([self.space.one_hot(a) for a in archs]), np.array(sizes, dtype=np.float32)])

    def fit(self, archs: Sequence[Arch], costs: Sequence[Mapping[str, float]], accuracy: Sequence[float]) -> None:
        self.model = GradientBoostingRegressor(n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8,
                                               random_state=self.seed)
        self.model.fit(self.features(archs, costs), np.asarray(accuracy))

    def predict(self, archs: Sequence[Arch], costs: Sequence[Mapping[str, float]]) -> np.ndarray:
        assert self.model is not None, "fit the predictor first"
        return self.model.predict(self.features(archs, costs))


def held_out_quality(space: SearchSpaceSpec, archs: Sequence[Arch], metrics: Sequence[Mapping[str, float]],
                     folds: int = 5, seed: int = 0) -> dict[str, float] | None:
    """k-fold cross-validated RMSE and Kendall tau of the predictor on the evaluated archs (None if too few)."""
    n = len(archs)
    if n < 2 * folds:
        return None
    order = list(range(n))
    random.Random(seed).shuffle(order)
    predicted = np.empty(n)
    for k in range(folds):
        test = order[k::folds]
        held = set(test)
        train = [i for i in order if i not in held]
        model = AccuracyPredictor(space, seed)
        model.fit([archs[i] for i in train], [metrics[i] for i in train], [metrics[i]["accuracy"] for i in train])
        predicted[test] = model.predict([archs[i] for i in test], [metrics[i] for i in test])
    actual = np.array([m["accuracy"] for m in metrics])
    tau = kendalltau(predicted, actual).statistic
    return {"rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))), "kendall_tau": float(tau if tau == tau else 0.0),
            "samples": float(n), "folds": float(folds)}


class Screened(Strategy):
    """Pre-screens the proposals of `inner` with an accuracy predictor (see the module docstring)."""

    def __init__(self, inner: Strategy, cost: CostFn, factor: int, min_evaluations: int, refit_every: int = 10):
        super().__init__(inner.space, inner.objectives, inner.settings)
        self.inner, self.cost, self.factor = inner, cost, factor
        self.min_evaluations, self.refit_every = min_evaluations, refit_every
        self.predictor = AccuracyPredictor(inner.space, inner.settings.seed)
        self.evaluated: dict[str, tuple[Arch, dict[str, float]]] = {}
        self._fitted_at = 0
        self.screened = 0  # proposals the predictor turned down

    def resume(self, done: Sequence[tuple[Arch, Mapping[str, float]]]) -> None:
        self.inner.resume(done)
        for arch, metrics in done:
            self.evaluated[arch.id] = (arch, dict(metrics))

    def ask(self) -> Arch:
        if len(self.evaluated) < self.min_evaluations:
            return self.inner.ask()
        self._refit()
        proposals = list({a.id: a for a in (self.inner.ask() for _ in range(self.factor))}.values())
        best = self._most_promising(proposals)
        for arch in proposals:
            if arch is not best:
                self.inner.discard(arch)
        self.screened += len(proposals) - 1
        return best

    def tell(self, arch: Arch, metrics: Mapping[str, float]) -> None:
        self.inner.tell(arch, metrics)
        self.evaluated[arch.id] = (arch, dict(metrics))

    def discard(self, arch: Arch) -> None:
        self.inner.discard(arch)

    def _refit(self) -> None:
        if self.predictor.model is not None and len(self.evaluated) - self._fitted_at < self.refit_every:
            return
        archs, metrics = zip(*self.evaluated.values(), strict=True)
        self.predictor.fit(archs, metrics, [m["accuracy"] for m in metrics])
        self._fitted_at = len(self.evaluated)

    def _most_promising(self, proposals: list[Arch]) -> Arch:
        """The proposal of best Pareto rank among the proposals and the archs evaluated so far (predicted
        accuracy, exact costs), and within that rank the one whose predicted point adds the most hypervolume to
        the front so far (so it fills the front's widest gap rather than crowd a dense part); infeasible ones
        only when nothing else is left; ties at random."""
        costs = [self.cost(a) for a in proposals]
        predicted = self.predictor.predict(proposals, costs)
        scored = [c | {"accuracy": float(p)} for c, p in zip(costs, predicted, strict=True)]
        feasible = [i for i, m in enumerate(scored) if self.objectives.feasible(m)] or list(range(len(scored)))
        known = [m for _, m in self.evaluated.values() if self.objectives.feasible(m)]
        mine_points = np.stack([self.objectives.minimized(scored[i]) for i in feasible])
        known_points = np.stack([self.objectives.minimized(m) for m in known]) if known else mine_points[:0]
        points = np.concatenate([mine_points, known_points])
        for front in non_dominated_sort(points):
            mine = [i for i in front if i < len(feasible)]
            if mine:
                gains = improvements(mine_points[mine], known_points, points)
                best = [m for m, g in zip(mine, gains, strict=True) if g >= max(gains) - 1e-12]
                return proposals[feasible[self.rng.choice(best)]]
        return proposals[feasible[0]]


def improvements(candidates: np.ndarray, front: np.ndarray, everything: np.ndarray) -> list[float]:
    """The hypervolume each candidate point alone adds to `front` (minimization), against a reference just
    beyond the worst of `everything` on each axis. Axes keep their units: scaling one scales every volume alike."""
    span = everything.max(axis=0) - everything.min(axis=0)
    reference = everything.max(axis=0) + 0.1 * np.where(span > 0, span, 1.0)
    base = hypervolume(front, reference) if len(front) else 0.0
    return [hypervolume(np.vstack([front, c[None]]), reference) - base for c in candidates]

"""Pareto utilities on minimization problems: non-dominated sorting and exact hypervolume (any number of objectives)."""

from __future__ import annotations

import moocore
import numpy as np


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """a is no worse than b everywhere and better somewhere (all objectives minimized)."""
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated_sort(points: np.ndarray) -> list[list[int]]:
    """Fronts of point indices: fronts[0] is the Pareto front, fronts[1] the next layer, ..."""
    pts = np.asarray(points, dtype=float)
    n = len(pts)
    if n == 0:
        return []
    # le[i, j]: i <= j everywhere; lt[i, j]: i < j somewhere
    le = np.all(pts[:, None, :] <= pts[None, :, :], axis=-1)
    lt = np.any(pts[:, None, :] < pts[None, :, :], axis=-1)
    dom = le & lt  # dom[i, j]: i dominates j
    dominated_by = dom.sum(axis=0)
    fronts: list[list[int]] = []
    current = [i for i in range(n) if dominated_by[i] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in np.flatnonzero(dom[i]):
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    nxt.append(int(j))
        current = sorted(nxt)
    return fronts


def pareto_front(points: np.ndarray) -> list[int]:
    fronts = non_dominated_sort(points)
    return fronts[0] if fronts else []


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact volume dominated by `points` and bounded by `reference` (minimization; any number of
    objectives, computed by moocore). Points not strictly better than the reference add nothing."""
    pts = np.asarray(points, dtype=float).reshape(-1, len(reference))
    ref = np.asarray(reference, dtype=float)
    pts = pts[np.all(pts < ref, axis=1)]
    return float(moocore.hypervolume(pts, ref=ref)) if len(pts) else 0.0

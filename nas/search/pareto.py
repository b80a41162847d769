"""Pareto utilities on minimization problems: non-dominated sorting and exact hypervolume (2 and 3 objectives)."""

from __future__ import annotations

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


def _hv2d(points: np.ndarray, ref: np.ndarray) -> float:
    pts = points[np.all(points < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]  # by x, then y
    volume, best_y = 0.0, ref[1]
    for x, y in pts:
        if y < best_y:
            volume += (ref[0] - x) * (best_y - y)
            best_y = y
    return volume


def _hv3d(points: np.ndarray, ref: np.ndarray) -> float:
    pts = points[np.all(points < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[np.argsort(pts[:, 2])]
    volume = 0.0
    for i in range(len(pts)):  # slab between consecutive z values: 2-D volume of points below it
        z_top = pts[i + 1, 2] if i + 1 < len(pts) else ref[2]
        if z_top > pts[i, 2]:
            volume += _hv2d(pts[: i + 1, :2], ref[:2]) * (z_top - pts[i, 2])
    return volume


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact volume dominated by `points` and bounded by `reference` (minimization; 1 to 3 objectives)."""
    pts = np.asarray(points, dtype=float).reshape(-1, len(reference))
    ref = np.asarray(reference, dtype=float)
    if len(ref) == 1:
        inside = pts[pts[:, 0] < ref[0]]
        return float(ref[0] - inside[:, 0].min()) if len(inside) else 0.0
    if len(ref) == 2:
        return _hv2d(pts, ref)
    if len(ref) == 3:
        return _hv3d(pts, ref)
    raise ValueError(f"exact hypervolume supports 1 to 3 objectives, got {len(ref)}")

"""Objectives and hard constraints over candidate metrics, expressed for minimization."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MAXIMIZE = {"accuracy"}  # every other objective is minimized


class Objectives:
    """Turns metrics into a vector to minimize (accuracy becomes error = 1 - accuracy) and checks bounds.

    Constraints are hard: accuracy >= bound; latency_ms, params, macs <= bound.
    """

    def __init__(self, names: Sequence[str], constraints: Mapping[Any, float] | None = None):
        self.names = list(names)
        self.constraints = dict(constraints or {})

    def minimized(self, metrics: Mapping[str, float]) -> np.ndarray:
        return np.array([1.0 - metrics[n] if n in MAXIMIZE else metrics[n] for n in self.names], dtype=float)

    def violations(self, metrics: Mapping[str, float]) -> list[float]:
        """One value per constraint, <= 0 when it holds (how far beyond the bound otherwise)."""
        out = []
        for name, bound in self.constraints.items():
            value = metrics[name]
            out.append(bound - value if name in MAXIMIZE else value - bound)
        return out

    def feasible(self, metrics: Mapping[str, float]) -> bool:
        return all(v <= 0 for v in self.violations(metrics))

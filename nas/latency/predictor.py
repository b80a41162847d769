"""Predict a network's latency from a table: per-family sums of its layers' entries, corrected by a
linear model fitted on measured whole networks (what the sum of isolated layers misses: call
overhead, caches, thread wake-ups)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import nnls

from nas.latency.layers import arch_layers
from nas.latency.table import Correction, LatencyTable, TableError, layer_key
from search_spaces import Arch, HybridSupernet, SearchSpaceSpec

FAMILIES = ("conv", "attention", "ssm", "other")
FEATURES = tuple(f"{f}_ms" for f in FAMILIES) + ("layers", "constant")


class LatencyPredictor:
    def __init__(self, table: LatencyTable, space: SearchSpaceSpec):
        table.check_space(space)
        self.table, self.space = table, space
        self.supernet = HybridSupernet.from_spec(space)
        self.ms = table.lookup()
        self._arch_cache: dict[str, np.ndarray] = {}

    def features(self, arch: Arch) -> np.ndarray:
        """[conv_ms, attention_ms, ssm_ms, other_ms, layers, 1] of the table entries `arch` uses."""
        cached = self._arch_cache.get(arch.id)
        if cached is not None:
            return cached
        f = np.zeros(len(FEATURES))
        layers = arch_layers(self.supernet, arch)
        for entry, size in layers:
            key = layer_key(entry, size)
            if key not in self.ms:
                raise TableError(f"the table has no entry for layer {entry} at input size {size}; rebuild it "
                                 "(or build the entries of these archs with --archs)")
            family = entry["type"] if entry["type"] in FAMILIES else "other"
            f[FAMILIES.index(family)] += self.ms[key]
        f[4], f[5] = len(layers), 1.0
        self._arch_cache[arch.id] = f
        return f

    def layer_sum(self, arch: Arch) -> float:
        return float(self.features(arch)[:4].sum())

    def coefficients(self) -> np.ndarray:
        c = self.table.correction.coefficients
        if not c:  # no correction fitted: the plain sum of layers
            return np.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
        return np.array([c[name] for name in FEATURES])

    def predict_many(self, archs: Sequence[Arch]) -> np.ndarray:
        """Vectorized: one matrix-vector product over the archs' feature rows."""
        return np.stack([self.features(a) for a in archs]) @ self.coefficients()

    def __call__(self, arch: Arch) -> float:
        return float(self.features(arch) @ self.coefficients())

    def layer_breakdown(self, arch: Arch) -> list[dict]:
        """Each layer's table latency (before the whole-network correction), for the dashboard."""
        return [{"layer": e, "input_size": s, "ms": self.ms.get(layer_key(e, s))} for e, s in
                arch_layers(self.supernet, arch)]


def fit_correction(rows: np.ndarray, measured: np.ndarray) -> Correction:
    """Non-negative least squares of measured latency on the feature rows, relative error weighted."""
    weights = 1.0 / np.maximum(measured, 1e-9)  # fit relative error: small networks count as much as big ones
    coef, _ = nnls(rows * weights[:, None], measured * weights)
    return Correction(coefficients=dict(zip(FEATURES, map(float, coef), strict=True)), networks=len(measured))


def load_predictor(path: str, space: SearchSpaceSpec) -> LatencyPredictor:
    """The latency_ms objective of a search: a predictor over the table at `path`."""
    return LatencyPredictor(LatencyTable.load(path), space)

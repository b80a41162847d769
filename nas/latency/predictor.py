"""Predict a network's latency from a table: the sum of its layers' in-context entries plus the
whole-network overhead (constant + per layer) fitted on measured networks.

Prediction is a few dictionary look-ups per arch: each layer position of an arch is described by a
small hashable tuple, resolved to its table entry once and remembered, so a search can score
hundreds of thousands of candidates per second (benchmarks/latency_predict.py).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from nas.latency.table import Correction, LatencyTable, TableError, layer_key
from search_spaces import Arch, LayerSite, SearchSpaceSpec, walk


class LatencyPredictor:
    def __init__(self, table: LatencyTable, space: SearchSpaceSpec):
        table.check_space(space)
        self.table, self.space = table, space
        self.ms = table.lookup()
        self._by_position: dict[Hashable, float] = {}

    def layer_ms(self, arch: Arch) -> list[float]:
        """The table entry of each of `arch`'s layers."""
        # archs are trusted to belong to the space (a search's do): checking them costs more than the look-ups
        return [self._site_ms(site) for site in walk(self.space, arch, check=False)]

    def _site_ms(self, site: LayerSite) -> float:
        key = site.key
        ms = self._by_position.get(key)
        if ms is None:
            ms = self.ms.get(layer_key(site.config, site.input_size))
            if ms is None:
                raise TableError(f"the table has no entry for layer {site.config} at input size {site.input_size}; "
                                 "rebuild it (or build the entries of these archs with --archs)")
            self._by_position[key] = ms
        return ms

    def predict_many(self, archs: Sequence[Arch]) -> np.ndarray:
        c = self.table.correction
        rows = [self.layer_ms(a) for a in archs]
        sums = np.fromiter(map(sum, rows), float, len(rows))
        layers = np.fromiter(map(len, rows), float, len(rows))
        return sums + c.constant + c.per_layer * layers

    def __call__(self, arch: Arch) -> float:
        ms = self.layer_ms(arch)
        c = self.table.correction
        return float(sum(ms) + c.constant + c.per_layer * len(ms))

    def layer_breakdown(self, arch: Arch) -> list[dict]:
        """Each layer's table latency (before the whole-network overhead), for the dashboard."""
        return [{"layer": site.config, "input_size": site.input_size,
                 "ms": self.ms.get(layer_key(site.config, site.input_size))} for site in walk(self.space, arch)]


def fit_correction(layer_sums: np.ndarray, layers: np.ndarray, measured: np.ndarray) -> Correction:
    """Least squares of (measured - sum of layers) on [1, layers], relative-error weighted so that
    small networks count as much as big ones."""
    w = 1.0 / np.maximum(measured, 1e-9)
    design = np.column_stack([np.ones_like(layers), layers]) * w[:, None]
    (constant, per_layer), *_ = np.linalg.lstsq(design, (measured - layer_sums) * w, rcond=None)
    return Correction(constant=float(constant), per_layer=float(per_layer), networks=len(measured))


def load_predictor(path: str, space: SearchSpaceSpec) -> LatencyPredictor:
    """The latency_ms objective of a search: a predictor over the table at `path`."""
    return LatencyPredictor(LatencyTable.load(path), space)

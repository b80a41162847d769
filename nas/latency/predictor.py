"""Predict a network's latency from a table: the sum of its layers' entries, each in the context of
the kind of layer before it (table.context), plus the whole-network overhead fitted on measured networks
(a constant, a cost per layer, and per block family a ridge-regularised extra per layer: what a plain
forward call costs beyond its timed layers differs by family), times the host-speed calibration.

Prediction is a few dictionary look-ups per arch: each layer position of an arch is described by a
small hashable tuple, resolved to its table entry (and its share of the overhead) once and remembered,
so a search can score tens of thousands of candidates per second (benchmarks/latency_predict.py).
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence

import numpy as np

from nas.latency.table import FIRST, Correction, LatencyTable, OverheadPoint, TableError, layer_key
from search_spaces import Arch, LayerSite, SearchSpaceSpec, walk

RIDGE = 1.0  # pulls each family's extra per-layer cost towards 0 (the shared per-layer cost) when few networks hold it


class LatencyPredictor:
    """Predicts the archs of `space` from a table that holds their layers. `scale` converts the table's
    build-time units to the host's speed now (1.0: uncalibrated; see nas.latency.calibration)."""

    def __init__(self, table: LatencyTable, space: SearchSpaceSpec, scale: float = 1.0):
        self.table, self.space, self.scale = table, space, scale
        self.ms = table.lookup()
        # by (position, kind of the layer before): (entry in that context, that + its overhead share)
        self._by_position: dict[Hashable, tuple[float, float]] = {}

    def layer_ms(self, arch: Arch) -> list[float]:
        """The table entry of each of `arch`'s layers, in its context."""
        return [found[0] for found in self._sites(arch)]

    def _walk(self, arch: Arch) -> list[LayerSite]:
        # archs are trusted to belong to the space (a search's do): checking them costs more than the look-ups
        return walk(self.space, arch, check=False)

    def _sites(self, arch: Arch) -> list[tuple[float, float]]:
        out, after = [], FIRST
        for site in self._walk(arch):
            out.append(self._site(site, after))
            after = site.kind
        return out

    def _site(self, site: LayerSite, after: str) -> tuple[float, float]:
        key = (site.key, after)
        found = self._by_position.get(key)
        if found is None:
            ms = self.ms.get(layer_key(site.config, site.input_size))
            if ms is None:
                raise TableError(f"the table has no entry for layer {site.config} at input size {site.input_size}; "
                                 "extend it for this space (nas latency build --space ... --out TABLE)")
            c = self.table.correction
            ms = self.table.in_context(ms, after, site.kind)
            found = self._by_position[key] = (ms, ms + c.per_layer + c.per_kind.get(site.kind, 0.0))
        return found

    def _unscaled(self, arch: Arch) -> float:
        return sum(found[1] for found in self._sites(arch)) + self.table.correction.constant

    def predict_many(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.fromiter((self._unscaled(a) for a in archs), float, len(archs)) * self.scale

    def __call__(self, arch: Arch) -> float:
        return self._unscaled(arch) * self.scale

    def overhead_point(self, arch: Arch, measured: float, space_fingerprint: str, source: str) -> OverheadPoint:
        """A whole-network measurement (reference units) of `arch`, as the overhead fit takes it."""
        sites = self._walk(arch)
        kinds: dict[str, int] = {}
        for site in sites:
            kinds[site.kind] = kinds.get(site.kind, 0) + 1
        return OverheadPoint(layer_sum=sum(self.layer_ms(arch)), layers=len(sites), kinds=kinds,
                             measured=measured, space=space_fingerprint, source=source, arch=arch.to_dict())

    def layer_breakdown(self, arch: Arch) -> list[dict]:
        """Each layer's table latency (before the whole-network overhead), for the dashboard."""
        return [{"layer": site.config, "input_size": site.input_size,
                 "ms": self.ms.get(layer_key(site.config, site.input_size))} for site in walk(self.space, arch)]


def fit_correction(points: Sequence[OverheadPoint], ridge: float = RIDGE) -> Correction:
    """Least squares of (measured - sum of layers) on [1, layers, layers of each family], relative-error
    weighted so that small networks count as much as big ones; the families' terms are ridge-penalised."""
    kinds = sorted({k for p in points for k in p.kinds})
    measured = np.array([p.measured for p in points])
    w = 1.0 / np.maximum(measured, 1e-9)
    design = np.array([[1.0, p.layers, *(p.kinds.get(k, 0) for k in kinds)] for p in points]) * w[:, None]
    target = (measured - np.array([p.layer_sum for p in points])) * w
    if kinds:  # penalty rows: sqrt(ridge) * coefficient = 0, scaled like the weighted residuals (~ relative error)
        penalty = np.zeros((len(kinds), 2 + len(kinds)))
        penalty[:, 2:] = np.eye(len(kinds)) * np.sqrt(ridge) * float(np.mean(w))
        design, target = np.vstack([design, penalty]), np.concatenate([target, np.zeros(len(kinds))])
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    return Correction(constant=float(coef[0]), per_layer=float(coef[1]),
                      per_kind={k: float(c) for k, c in zip(kinds, coef[2:], strict=True)}, networks=len(points))


def check_covers(table: LatencyTable, space: SearchSpaceSpec, name: str = "the table", where: str = "") -> None:
    """Fail before any work when the table lacks layers that archs of `space` use."""
    from nas.latency.layers import missing_layers

    missing = missing_layers(table, space)
    if missing:
        example = json.loads(next(iter(missing)))
        raise TableError(f"{name} lacks {len(missing)} of the layers of space {space.name!r} at input "
                         f"{list(space.input_shape)} (e.g. {example['layer']} at input size {example['input_size']}); "
                         f"extend it{where}: nas latency build --space SPACE --out TABLE measures only those")

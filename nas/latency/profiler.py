"""Build or extend a latency table by timing layers inside whole networks (resumable), fit the
whole-network overhead on measured networks, and validate against networks never seen.

Layers timed alone ran 1.1-4.5x faster than inside a network on a 2-core CPU (an exploratory run) (warm caches,
threads already awake, no neighbours), and not by a constant factor, so the table times each layer where it
runs: a greedy cover picks random networks of a space until every layer configuration it can use has been
timed in `profile.cover` of them, and an entry is the mean over its contexts. A table built for one space
is extended for another (a re-targeted space, a new input size) by timing only the layers it lacks.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

# imported with the module although only validation uses it: without scipy loaded, a worker's table put one
# front network 14% off the REST acceptance test's own timing, twice (once again loaded, it passed; cause unknown:
# the host's states, README *Sub-millisecond networks*, may explain it as well)
from scipy.stats import kendalltau, spearmanr

from nas.files import Guard
from nas.latency.allocator import fix_allocator
from nas.latency.backends import backend_for
from nas.latency.layers import arch_layers, missing_layers
from nas.latency.predictor import LatencyPredictor, fit_correction
from nas.latency.profile import HardwareProfile, Machine
from nas.latency.table import (
    FIRST,
    Entry,
    LatencyTable,
    Reference,
    TableError,
    layer_key,
    network_id,
    space_fingerprint,
)
from nas.latency.timing import Timed, alone, paired
from search_spaces import Arch, SearchSpaceSpec, plan
from search_spaces.standalone import Network

Progress = Callable[[str, int, int], None]
REFERENCE_SEED, COVER_SEED, CALIBRATION_SEED = 12_345, 7, 10_000  # validation samples with its own seed
COVER_POOL = 4000  # random archs the cover picks from (grown while some layer is missing)


class Measurer:
    """What every measurement on one profile needs: the backend and the reference network with its input."""

    def __init__(self, profile: HardwareProfile, reference: Reference):
        if not fix_allocator(profile.allocator):
            raise TableError(f"the profile measures with the {profile.allocator!r} allocator regime, which this "
                             "process cannot set (no glibc)")
        self.profile = profile
        self.backend = backend_for(profile)
        self._inputs: dict[tuple[int, ...], Any] = {}
        ref_x = self.input(reference.input_shape)
        self.reference_net = Timed(self.backend.layers(Network(reference.plan), ref_x), ref_x)
        self.reference = reference if reference.ms > 0 else reference.model_copy(
            update={"ms": alone(self.reference_net, profile)})

    @classmethod
    def for_space(cls, profile: HardwareProfile, reference: Reference | None, space: SearchSpaceSpec) -> Measurer:
        """A measurer whose reference is `reference`, or (a new table) a fixed random arch of `space`."""
        if reference is None:
            arch = space.sample(random.Random(REFERENCE_SEED))
            reference = Reference(plan=plan(space, arch), input_shape=list(space.input_shape), ms=0.0)
        return cls(profile, reference)

    def input(self, shape: Sequence[int]) -> Any:
        """The same input every time for a shape, without touching the global RNG."""
        key = tuple(shape)
        if key not in self._inputs:
            seeded = torch.Generator().manual_seed(0)
            self._inputs[key] = self.backend.input(torch.randn(self.profile.batch_size, *key, generator=seeded))
        return self._inputs[key]

    def _paired(self, net: Timed) -> tuple[np.ndarray, float]:
        ms, reference_now = paired(net, self.reference_net, self.profile)
        return ms * (self.reference.ms / reference_now), reference_now / self.reference.ms

    def layer_ms(self, layers: list[dict[str, Any]], input_shape: Sequence[int]) -> np.ndarray:
        """Each layer of a network (its plan) timed in context, in reference units."""
        x = self.input(input_shape)
        return self._paired(Timed(self.backend.layers(Network(layers), x), x))[0]

    def network_ms(self, layers: list[dict[str, Any]], input_shape: Sequence[int]) -> tuple[float, float]:
        """(the whole network called as one module, in reference units; the machine's slowdown now:
        reference now / at build time, so that ms * slowdown is what it took)."""
        x = self.input(input_shape)
        ms, slowdown = self._paired(Timed(self.backend.whole(Network(layers), x), x))
        return float(ms.sum()), slowdown

    def speed_now(self) -> float:
        """The reference network alone now over at build time (> 1: the host is slower than then)."""
        return alone(self.reference_net, self.profile) / self.reference.ms


def covering_archs(space: SearchSpaceSpec, need: dict[str, int], measured: AbstractSet[str] = frozenset(),
                   seed: int = COVER_SEED) -> list[Arch]:
    """Random archs, picked greedily, until every layer of `need` is used by as many of them as it needs
    (or by all that use it, for layers that few archs can hold); networks in `measured` are not picked again."""
    rng = random.Random(seed)
    pool: list[tuple[Arch, set[str]]] = []
    holders: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for _round in range(10):
        for _ in range(COVER_POOL):
            arch = space.sample(rng)
            if arch.id in seen:  # small spaces repeat archs
                continue
            seen.add(arch.id)
            layers = arch_layers(space, arch)
            keys = {layer_key(e, s) for e, s in layers} & need.keys()
            if not keys or (measured and network_id([e for e, _ in layers], space.input_shape) in measured):
                continue
            for k in keys:
                holders[k].append(len(pool))
            pool.append((arch, keys))
        if all(len(holders[k]) >= n for k, n in need.items()):
            break
    missing = [k for k in need if not holders[k]]
    if missing:
        raise TableError(f"{len(missing)} layer configurations never occur in {len(seen)} random archs, "
                         f"e.g. {missing[0]}")
    need = {k: min(n, len(holders[k])) for k, n in need.items()}
    chosen: dict[int, None] = {}  # insertion-ordered set
    for key in sorted(need, key=lambda k: (len(holders[k]), k)):  # rarest first; by key on ties, so
        # that every process (string hashing differs) picks the same cover and a build resumes exactly
        while need[key] > 0:
            free = [i for i in holders[key] if i not in chosen]
            best = max(free, key=lambda i: sum(need[k] > 0 for k in pool[i][1]))
            chosen[best] = None
            for k in pool[best][1]:
                need[k] -= 1
    return [pool[i][0] for i in chosen]


def build_table(
    space: SearchSpaceSpec, profile: HardwareProfile, out: Path, calibration: int = 20,
    archs: list[Arch] | None = None, progress: Progress | None = None, checkpoint_every: int = 10,
    guard: Guard = nullcontext,
) -> LatencyTable:
    """Time the layers of `space` that the table at `out` lacks (all of them for a new table; only those
    `archs` use when given), in context, resuming or extending `out` (which only writes under `guard`);
    fit the whole-network overhead on `calibration` networks of the space if none of it was measured yet."""
    progress = progress or (lambda *_: None)
    t0 = time.perf_counter()
    table = _resume(out, profile)
    profile = table.profile
    measurer = Measurer.for_space(profile, table.reference, space)
    table.reference = measurer.reference
    table.note_space(space)
    done = set(table.networks)
    if archs is None:
        networks = covering_archs(space, missing_layers(table, space, profile.cover), done)
    else:
        unique = {a.id: a for a in archs}.values()
        networks = [a for a in unique if network_id(plan(space, a), space.input_shape) not in done]
    fingerprint = space_fingerprint(space)
    overhead: list[Arch] = []
    if calibration > 0 and not any(p.space == fingerprint for p in table.points):
        # the given archs hold the only layers a partial table has
        overhead = networks[:calibration] if archs is not None else calibration_archs(space, calibration)
    # the overhead networks are measured spread over the layer timings, not in one burst after them: the host's
    # speed moves between states over tens of seconds, and a sub-millisecond network's share of a move differs
    # from the reference's (by up to 13% here: README), so a burst would bias the fitted overhead by the state it met
    due = spread(len(overhead), len(networks))
    whole: list[tuple[float, float]] = []
    progress("networks", 0, len(networks))
    entries = {layer_key(e.layer, e.input_size): e for e in table.entries}
    for n, arch in enumerate(networks, 1):
        layers = arch_layers(space, arch)
        configs = [e for e, _ in layers]  # timed without weights: they do not change a latency
        _add_samples(table, entries, layers, measurer.layer_ms(configs, space.input_shape))
        table.networks.append(network_id(configs, space.input_shape))
        whole += measure_networks(measurer, space, [overhead[k] for k in due.get(n, ())])
        if n % checkpoint_every == 0:
            table.build_seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            table.save(out, guard)  # an interrupted build resumes from here
        progress("networks", n, len(networks))
    if networks:
        table.fit_contexts()
    if overhead:
        if not networks:  # no layer timings to spread them over
            whole = measure_networks(measurer, space, overhead, progress)
        add_overhead_points(table, space, overhead, whole, "build")
    table.build_seconds += time.perf_counter() - t0
    table.save(out, guard)
    return table


def spread(count: int, over: int) -> dict[int, list[int]]:
    """Which of `count` items to take after each of `over` steps (1-based), evenly spread from the first."""
    due: dict[int, list[int]] = defaultdict(list)
    if over:
        for k in range(count):
            due[k * over // count + 1].append(k)
    return due


def calibration_archs(space: SearchSpaceSpec, n: int) -> list[Arch]:
    """The `n` networks a new table's overhead is fitted on: the space's smallest (overall, then of each block
    family), up to a quarter of them, and random ones. A latency objective's front reaches down to the smallest
    networks, where the whole-network overhead is the largest share of a prediction; random networks alone
    seldom go there, and the fit would extrapolate to the front's low end (README: Sub-millisecond networks)."""
    anchors = list({a.id: a for a in [space.smallest(), *map(space.smallest, space.families())]}.values())
    rng = random.Random(CALIBRATION_SEED)
    chosen = anchors[: n // 4]
    return chosen + [space.sample(rng) for _ in range(n - len(chosen))]


def validation_archs(space: SearchSpaceSpec, n: int, seed: int = 0) -> list[Arch]:
    """The random networks `validate_table` measures (its own seed, apart from the build's)."""
    rng = random.Random(seed)
    return [space.sample(rng) for _ in range(n)]


def _add_samples(table: LatencyTable, entries: dict[str, Entry], layers: list, ms: np.ndarray) -> None:
    after = FIRST
    for (entry, size), value in zip(layers, ms, strict=True):
        key = layer_key(entry, size)
        if key not in entries:
            entries[key] = Entry(layer=entry, input_size=size, ms=0.0)
            table.entries.append(entries[key])
        entries[key].add(float(value), after)
        after = entry["type"]


def measure_networks(measurer: Measurer, space: SearchSpaceSpec, archs: Sequence[Arch],
                     progress: Progress | None = None) -> list[tuple[float, float]]:
    """Each arch end to end: (in reference units, the host's slowdown then)."""
    progress = progress or (lambda *_: None)
    out = []
    for n, arch in enumerate(archs, 1):
        out.append(measurer.network_ms(plan(space, arch), space.input_shape))
        progress("calibrate", n, len(archs))
    return out


def add_overhead_points(table: LatencyTable, space: SearchSpaceSpec, archs: Sequence[Arch],
                        measurements: Sequence[tuple[float, float]], source: str) -> list[tuple[float, float, float]]:
    """Add whole-network measurements (`measure_networks`) to the points the overhead is fitted on and refit
    it; returns per arch (predicted before the refit, measured, both in reference units; the slowdown then)."""
    predictor = LatencyPredictor(table, space)
    fingerprint = space_fingerprint(space)
    out = []
    for arch, (measured, slowdown) in zip(archs, measurements, strict=True):
        out.append((predictor(arch), measured, slowdown))
        table.points.append(predictor.overhead_point(arch, measured, fingerprint, source))
    table.correction = fit_correction(table.points)
    return out


def _resume(out: Path, profile: HardwareProfile) -> LatencyTable:
    """The table at `out` (or a new one) measured with `profile`, bound to this machine."""
    bound = profile.bound_here()
    if out.exists():
        table = LatencyTable.load(out)
        if table.profile not in (profile, bound) and table.profile.bound_here() != bound:
            raise TableError(f"{out} was measured with another profile; choose another output file")
        table.profile = bound
        return table
    return LatencyTable(profile=bound)


def validate_table(
    table: LatencyTable, space: SearchSpaceSpec, samples: int = 100, seed: int = 0, repeat_for_noise: int = 20,
    progress: Progress | None = None, plot: Path | None = None, repeats: int | None = None,
) -> dict[str, Any]:
    """Measure `samples` random subnets end to end (same protocol; `repeats` runs each, default the profile's:
    more make the ground truth more precise) and compare with the predictions: as calibrated to the host's
    speed when each network ran (its interleaved reference), and raw (in the table's build-time units
    against the plain milliseconds)."""
    progress = progress or (lambda *_: None)
    if not table.profile.matches_here():
        raise TableError(f"the table was measured on {table.profile.machine}, this machine is "
                         f"{Machine.here(table.profile.device)}: validate it where it was built")
    if table.reference is None:
        raise TableError("the table has no reference measurement: finish its build first")
    predictor = LatencyPredictor(table, space)
    protocol = table.profile if repeats is None else table.profile.model_copy(update={"repeats": repeats})
    measurer = Measurer(protocol, table.reference)
    archs = validation_archs(space, samples, seed)
    measured, slowdowns = [], []
    for n, arch in enumerate(archs, 1):
        ms, slowdown = measurer.network_ms(plan(space, arch), space.input_shape)
        measured.append(ms)
        slowdowns.append(slowdown)
        progress("validate", n, samples)
    again = [measurer.network_ms(plan(space, a), space.input_shape)[0] for a in archs[:repeat_for_noise]]
    predicted = predictor.predict_many(archs)
    m, speed = np.array(measured), np.array(slowdowns)
    report = accuracy_report(predicted, m, np.array(again))
    raw = accuracy_report(predicted, m * speed, np.array(again) * speed[: len(again)])
    report |= {
        "calibration": "each prediction scaled by the host's speed when its network ran (the reference network "
                       "interleaved with it, now / at build time); 'raw' compares the table's figures with the "
                       "plain milliseconds",
        "raw": {k: raw[k] for k in ("mape", "within_5pct", "within_10pct", "kendall_tau", "mean_error")},
        "machine_slowdown": {"min": float(speed.min()), "max": float(speed.max()),
                             "note": "reference network now / at build time"},
        "profile": table.profile.model_dump(mode="json"), "space": space.name,
        "table": {"entries": len(table.entries), "networks": len(table.networks), "build_seconds": table.build_seconds},
        "repeats": protocol.repeats,
        "networks": [{"arch_id": a.id, "predicted_ms": float(p), "measured_ms": float(v), "slowdown": float(f)}
                     for a, p, v, f in zip(archs, predicted, m, speed, strict=True)],
    }
    if plot is not None:
        _scatter(m, predicted, report, plot)
    return report


def accuracy_report(predicted: np.ndarray, measured: np.ndarray, again: np.ndarray) -> dict[str, Any]:
    """The prediction error next to the noise floor (`again` re-measures the first networks)."""
    err = (predicted - measured) / measured
    noise = np.abs(again - measured[: len(again)]) / measured[: len(again)]
    return {
        "n": len(measured), "mape": float(np.mean(np.abs(err))),
        "rmse_ms": float(np.sqrt(np.mean((predicted - measured) ** 2))),
        "within_5pct": float(np.mean(np.abs(err) <= 0.05)), "within_10pct": float(np.mean(np.abs(err) <= 0.10)),
        "kendall_tau": float(kendalltau(predicted, measured).statistic),
        "spearman_rho": float(spearmanr(predicted, measured).statistic),
        "mean_error": float(np.mean(err)),
        "noise_floor": {"median_rel_diff": float(np.median(noise)), "p90_rel_diff": float(np.quantile(noise, 0.9)),
                        "networks": len(again)},
        "measured_ms": {"min": float(measured.min()), "max": float(measured.max())},
    }


def _scatter(measured: np.ndarray, predicted: np.ndarray, report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(measured, predicted, s=12)
    lo, hi = float(min(measured.min(), predicted.min())), float(max(measured.max(), predicted.max()))
    xs = np.linspace(lo, hi, 10)
    ax.plot(xs, xs, "k-", lw=1)
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="grey", alpha=0.2, label="±10%")
    ax.set_xlabel("measured ms")
    ax.set_ylabel("predicted ms")
    ax.set_title(f"{report['space']}: {100 * report['within_10pct']:.0f}% within ±10%, tau {report['kendall_tau']:.2f}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

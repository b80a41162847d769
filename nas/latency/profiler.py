"""Build a latency table by timing every distinct layer inside whole networks (resumable), fit the
whole-network overhead on a few measured networks, and validate against networks never seen.

Layers timed alone ran 1.1-4.5x faster than inside a network on a 2-core CPU (an exploratory run) (warm caches, threads
already awake, no neighbours), and not by a constant factor, so the table times each layer where it
runs: a greedy cover picks random networks until every layer configuration has been timed in
`profile.cover` of them, and an entry is the mean over its contexts.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from nas.files import Guard
from nas.latency.backends import backend_for
from nas.latency.layers import arch_layers, space_layers
from nas.latency.predictor import LatencyPredictor, fit_correction
from nas.latency.profile import HardwareProfile
from nas.latency.table import Entry, LatencyTable, Reference, TableError, layer_key, space_ref
from nas.latency.timing import Step, alone, paired
from search_spaces import Arch, HybridSupernet, SearchSpaceSpec

Progress = Callable[[str, int, int], None]
REFERENCE_SEED, COVER_SEED, CALIBRATION_SEED = 12_345, 7, 10_000  # validation samples with its own seed
COVER_POOL = 4000  # random archs the cover picks from (grown while some layer is missing)


class Measurer:
    """What every measurement of one table needs: the backend, the input and the reference network."""

    def __init__(self, space: SearchSpaceSpec, profile: HardwareProfile, reference: Reference | None):
        self.space, self.profile = space, profile
        self.supernet = HybridSupernet.from_spec(space)
        self.backend = backend_for(profile)
        seeded = torch.Generator().manual_seed(0)  # the same input every time, without touching the global RNG
        self.x = self.backend.input(torch.randn(profile.batch_size, *space.input_shape, generator=seeded))
        arch = space.parse(reference.arch) if reference else space.sample(random.Random(REFERENCE_SEED))
        self.reference_steps = self.backend.layers(self.supernet.extract(arch), self.x)
        self.reference = reference or Reference(arch=arch.to_dict(), ms=alone(self.reference_steps, self.x, profile))

    def _paired(self, steps: Sequence[Step]) -> tuple[np.ndarray, float]:
        ms, reference_now = paired(steps, self.reference_steps, self.x, self.profile)
        return ms * (self.reference.ms / reference_now), reference_now / self.reference.ms

    def layer_ms(self, arch: Arch) -> np.ndarray:
        """Each layer of `arch` timed in context, in reference units."""
        return self._paired(self.backend.layers(self.supernet.extract(arch), self.x))[0]

    def network_ms(self, arch: Arch) -> tuple[float, float]:
        """(the whole network called as one module, in reference units; the machine's slowdown now)."""
        ms, slowdown = self._paired(self.backend.whole(self.supernet.extract(arch), self.x))
        return float(ms.sum()), slowdown


def covering_archs(space: SearchSpaceSpec, wanted: set[str], cover: int, seed: int = COVER_SEED) -> list[Arch]:
    """Random archs, picked greedily, until every wanted layer is used by `cover` of them (or by all
    that use it, for layers that few archs can hold)."""
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
            keys = {layer_key(e, s) for e, s in arch_layers(space, arch)} & wanted
            for k in keys:
                holders[k].append(len(pool))
            pool.append((arch, keys))
        if all(len(holders[k]) >= cover for k in wanted):
            break
    missing = [k for k in wanted if not holders[k]]
    if missing:
        raise TableError(f"{len(missing)} layer configurations never occur in {len(pool)} random archs, "
                         f"e.g. {missing[0]}")
    need = {k: min(cover, len(holders[k])) for k in wanted}
    chosen: dict[int, None] = {}  # insertion-ordered set
    for key in sorted(wanted, key=lambda k: (len(holders[k]), k)):  # rarest first; by key on ties, so
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
    """Time the layers of the whole space (or only those `archs` use) in context, resuming from `out`
    (which only writes under `guard`)."""
    progress = progress or (lambda *_: None)
    t0 = time.perf_counter()
    table = _resume(out, space, profile)
    measurer = Measurer(space, profile, table.reference)
    table.reference = measurer.reference
    if archs is None:
        wanted = {layer_key(e, s) for e, s in space_layers(space)}
        networks = covering_archs(space, wanted, profile.cover)
    else:
        networks = list({a.id: a for a in archs}.values())
    progress("networks", 0, len(networks))
    entries = {layer_key(e.layer, e.input_size): e for e in table.entries}
    done = set(table.networks)
    for n, arch in enumerate(networks, 1):
        if arch.id not in done:
            _add_samples(table, entries, arch_layers(space, arch), measurer.layer_ms(arch))
            table.networks.append(arch.id)
            if n % checkpoint_every == 0:
                table.build_seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                table.save(out, guard)  # an interrupted build resumes from here
        progress("networks", n, len(networks))
    if calibration > 0 and table.correction.networks == 0:
        rng = random.Random(CALIBRATION_SEED)  # the given archs hold the only layers a partial table has
        chosen = networks[:calibration] if archs is not None else [space.sample(rng) for _ in range(calibration)]
        _calibrate(table, measurer, chosen, progress)
    table.build_seconds += time.perf_counter() - t0
    table.save(out, guard)
    return table


def _add_samples(table: LatencyTable, entries: dict[str, Entry], layers: list, ms: np.ndarray) -> None:
    for (entry, size), value in zip(layers, ms, strict=True):
        key = layer_key(entry, size)
        if key not in entries:
            entries[key] = Entry(layer=entry, input_size=size, ms=0.0)
            table.entries.append(entries[key])
        entries[key].add(float(value))


def _calibrate(table: LatencyTable, measurer: Measurer, archs: list[Arch], progress: Progress) -> None:
    """Fit the overhead of a plain forward call beyond its timed layers, on whole measured networks."""
    predictor = LatencyPredictor(table, measurer.space)
    sums, layers, measured = [], [], []
    for n, arch in enumerate(archs, 1):
        ms = predictor.layer_ms(arch)
        sums.append(sum(ms))
        layers.append(len(ms))
        measured.append(measurer.network_ms(arch)[0])
        progress("calibrate", n, len(archs))
    table.correction = fit_correction(np.array(sums), np.array(layers, float), np.array(measured))


def _resume(out: Path, space: SearchSpaceSpec, profile: HardwareProfile) -> LatencyTable:
    if out.exists():
        table = LatencyTable.load(out)
        table.check_space(space)
        if table.profile != profile:
            raise TableError(f"{out} was measured with another profile; choose another output file")
        return table
    return LatencyTable(space=space_ref(space), profile=profile)


def validate_table(
    table: LatencyTable, space: SearchSpaceSpec, samples: int = 100, seed: int = 0, repeat_for_noise: int = 20,
    progress: Progress | None = None, plot: Path | None = None,
) -> dict[str, Any]:
    """Measure `samples` random subnets end to end (same protocol) and compare with the predictions."""
    progress = progress or (lambda *_: None)
    if not table.profile.matches_here():
        raise TableError(f"the table was measured on {table.profile.machine}, this machine is "
                         f"{table.profile.machine.here(table.profile.device)}: validate it where it was built")
    if table.reference is None:
        raise TableError("the table has no reference measurement: finish its build first")
    predictor = LatencyPredictor(table, space)
    measurer = Measurer(space, table.profile, table.reference)
    rng = random.Random(seed)
    archs = [space.sample(rng) for _ in range(samples)]
    measured, slowdowns = [], []
    for n, arch in enumerate(archs, 1):
        ms, slowdown = measurer.network_ms(arch)
        measured.append(ms)
        slowdowns.append(slowdown)
        progress("validate", n, samples)
    again = [measurer.network_ms(a)[0] for a in archs[:repeat_for_noise]]
    predicted = predictor.predict_many(archs)
    m = np.array(measured)
    report = accuracy_report(predicted, m, np.array(again))
    report |= {
        "machine_slowdown": {"min": float(min(slowdowns)), "max": float(max(slowdowns)),
                             "note": "reference network now / at build time; measurements are scaled by it"},
        "profile": table.profile.model_dump(mode="json"), "space": table.space.name,
        "table": {"entries": len(table.entries), "networks": len(table.networks), "build_seconds": table.build_seconds},
        "networks": [{"arch_id": a.id, "predicted_ms": float(p), "measured_ms": float(v)}
                     for a, p, v in zip(archs, predicted, m, strict=True)],
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

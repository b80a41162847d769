"""Build a latency table: measure every distinct layer (resumable), then fit the whole-network
correction on measured networks. Validate it against networks it has never seen."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from nas.latency.layers import arch_layers, space_layers
from nas.latency.predictor import LatencyPredictor, fit_correction
from nas.latency.profile import HardwareProfile
from nas.latency.table import Entry, LatencyTable, TableError, layer_key, space_ref
from nas.latency.timing import measure
from search_spaces import Arch, HybridSupernet, SearchSpaceSpec
from search_spaces.standalone import Network

Progress = Callable[[str, int, int], None]
CALIBRATION_SEED = 10_000  # calibration and validation archs come from different seeds


def _input(dims: int, channels: int, size: int, batch: int) -> torch.Tensor:
    return torch.randn(batch, channels, *(size,) * dims)


def measure_layer(entry: dict[str, Any], size: int, channels: int, profile: HardwareProfile) -> tuple[float, float]:
    """Time one static layer on a random input of `channels` x `size` (per spatial dim)."""
    torch.manual_seed(0)
    return measure(Network([entry]), _input(entry["dims"], channels, size, profile.batch_size), profile)


def measure_network(supernet: HybridSupernet, arch: Arch, profile: HardwareProfile) -> float:
    space = supernet.space
    return measure(supernet.extract(arch), torch.randn(profile.batch_size, *space.input_shape), profile)[0]


def build_table(
    space: SearchSpaceSpec, profile: HardwareProfile, out: Path, calibration: int = 40,
    archs: list[Arch] | None = None, progress: Progress | None = None, checkpoint_every: int = 25,
) -> LatencyTable:
    """Measure the layers (all of them, or only those `archs` use), resuming from `out` if it exists."""
    progress = progress or (lambda *_: None)
    t0 = time.perf_counter()
    supernet = HybridSupernet.from_spec(space)
    table = _resume(out, space, profile)
    done = table.lookup()
    if archs is None:
        wanted = list(space_layers(supernet))
    else:
        wanted = list({layer_key(e, s): (e, s) for a in archs for e, s in arch_layers(supernet, a)}.values())
    todo = [(e, s) for e, s in wanted if layer_key(e, s) not in done]
    progress("layers", len(wanted) - len(todo), len(wanted))
    for n, (entry, size) in enumerate(todo, 1):
        channels = space.input.channels if entry["type"] == "resize" else entry["cin"]
        ms, spread = measure_layer(entry, size, channels, profile)
        table.entries.append(Entry(layer=entry, input_size=size, ms=ms, spread=spread))
        if n % checkpoint_every == 0:
            table.save(out)  # an interrupted build resumes from here
        progress("layers", len(wanted) - len(todo) + n, len(wanted))
    rng = random.Random(CALIBRATION_SEED)
    cal_archs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(max(0, calibration - 2))]
    if archs is None and calibration > 0:
        predictor = LatencyPredictor(table, space)
        rows, measured = [], []
        for n, arch in enumerate(cal_archs, 1):
            rows.append(predictor.features(arch))
            measured.append(measure_network(supernet, arch, profile))
            progress("calibrate", n, len(cal_archs))
        table.correction = fit_correction(np.stack(rows), np.array(measured))
    table.build_seconds += time.perf_counter() - t0
    table.save(out)
    return table


def _resume(out: Path, space: SearchSpaceSpec, profile: HardwareProfile) -> LatencyTable:
    if out.exists():
        table = LatencyTable.load(out)
        table.check_space(space)
        if table.profile != profile:
            raise TableError(f"{out} was measured with another profile; choose another output file")
        return table
    return LatencyTable(space=space_ref(space), profile=profile)


def validate_table(
    table: LatencyTable, space: SearchSpaceSpec, samples: int = 100, seed: int = 0, repeat_for_noise: int = 10,
    progress: Progress | None = None, plot: Path | None = None,
) -> dict[str, Any]:
    """Measure `samples` random subnets end to end and compare with the predictions."""
    progress = progress or (lambda *_: None)
    if not table.profile.matches_here():
        raise TableError(f"the table was measured on {table.profile.machine}, this machine is "
                         f"{table.profile.machine.here(table.profile.device)}: validate it where it was built")
    predictor = LatencyPredictor(table, space)
    supernet = predictor.supernet
    rng = random.Random(seed)
    archs = [space.sample(rng) for _ in range(samples)]
    measured = []
    for n, arch in enumerate(archs, 1):
        measured.append(measure_network(supernet, arch, table.profile))
        progress("validate", n, samples)
    again = [measure_network(supernet, a, table.profile) for a in archs[:repeat_for_noise]]
    predicted = predictor.predict_many(archs)
    m = np.array(measured)
    err = (predicted - m) / m
    noise = np.abs(np.array(again) - m[:repeat_for_noise]) / m[:repeat_for_noise]
    report = {
        "n": samples, "mape": float(np.mean(np.abs(err))), "rmse_ms": float(np.sqrt(np.mean((predicted - m) ** 2))),
        "within_5pct": float(np.mean(np.abs(err) <= 0.05)), "within_10pct": float(np.mean(np.abs(err) <= 0.10)),
        "kendall_tau": float(kendalltau(predicted, m).statistic), "spearman_rho": float(spearmanr(predicted, m).statistic),
        "noise_floor": {"median_rel_diff": float(np.median(noise)), "p90_rel_diff": float(np.quantile(noise, 0.9)),
                        "networks": len(again)},
        "measured_ms": {"min": float(m.min()), "max": float(m.max())},
        "profile": table.profile.model_dump(mode="json"), "space": table.space.name,
    }
    if plot is not None:
        _scatter(m, predicted, report, plot)
    return report


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

"""What a search asks of a latency table: a predictor for its (re-targeted) space, with the layers the
table lacks measured first on this host when it is the profile's machine, calibrated to the host's speed
now; and after the search, the front re-measured end to end (the device calibration loop) with the
residuals folded into the table's overhead terms.

A table file is shared by every search that names it, so each read-modify-write holds a lock file
beside it: two searches extending one table measure its missing layers once and lose nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from filelock import FileLock

from nas.files import Guard
from nas.latency.calibration import host_speed
from nas.latency.layers import missing_layers
from nas.latency.predictor import LatencyPredictor, check_covers
from nas.latency.profiler import Measurer, add_overhead_points, build_table, measure_networks
from nas.latency.table import LatencyTable, TableError, space_fingerprint
from search_spaces import Arch, SearchSpaceSpec

Progress = Callable[[str, int, int], None]
Note = Callable[[str], None]
EXTENSION_CALIBRATION = 20  # networks of a new space the overhead is refitted with
DEVICE_POINTS_KEPT = 200  # the newest front re-measurements the overhead fit keeps


def table_lock(path: str | Path) -> FileLock:
    return FileLock(str(path) + ".lock")


def search_predictor(
    path: str | Path, space: SearchSpaceSpec, *, measure_missing: bool = True, calibrate: bool = True,
    progress: Progress | None = None, note: Note | None = None, guard: Guard = nullcontext,
) -> LatencyPredictor:
    """The latency_ms objective of a search over `space`, from the table at `path`."""
    note = note or (lambda _text: None)
    with table_lock(path):
        table = LatencyTable.load(path)
        missing = missing_layers(table, space)
        if missing and measure_missing and table.profile.matches_here():
            note(f"measuring the {len(missing)} layers of this space that latency table lacks")
            table = build_table(space, table.profile, Path(path), EXTENSION_CALIBRATION, progress=progress,
                                guard=guard)
        elif missing:  # raises, naming an example layer
            check_covers(table, space, f"latency table {Path(path).name}", "" if table.profile.matches_here() else
                         f" (on the profile's machine, {table.profile.machine.cpu if table.profile.machine else '?'}: "
                         "this host is not it)")
    scale = 1.0
    if calibrate:
        try:
            scale = host_speed(table)
            note(f"latency predictions calibrated to this host's speed now: x{scale:.3f} of the table's build time")
        except TableError as err:  # not the profile's machine, or a table without a reference
            note(f"latency predictions not calibrated: {err}")
    return LatencyPredictor(table, space, scale)


def remeasure_front(path: str | Path, space: SearchSpaceSpec, archs: Sequence[Arch],
                    progress: Progress | None = None, guard: Guard = nullcontext) -> list[dict[str, Any]]:
    """Measure each arch end to end on this host (the profile's machine), fold the residuals into the table's
    overhead terms, and return per arch its predicted (calibrated to when it ran) and measured milliseconds."""
    with table_lock(path):
        table = LatencyTable.load(path)
        if table.reference is None or not table.profile.matches_here():
            raise TableError("the front can only be re-measured on the profile's machine (this host is not it), "
                             "with the table's reference network")
        measurer = Measurer(table.profile, table.reference)
        pairs = add_overhead_points(table, space, archs, measure_networks(measurer, space, archs, progress), "device")
        device = [i for i, p in enumerate(table.points) if p.source == "device"]
        if len(device) > DEVICE_POINTS_KEPT:
            dropped = set(device[: len(device) - DEVICE_POINTS_KEPT])
            table.points = [p for i, p in enumerate(table.points) if i not in dropped]
        table.save(path, guard)
    fingerprint = space_fingerprint(space)
    return [{"arch_id": a.id, "predicted_ms": predicted * slowdown, "measured_ms": measured * slowdown,
             "space": fingerprint} for a, (predicted, measured, slowdown) in zip(archs, pairs, strict=True)]

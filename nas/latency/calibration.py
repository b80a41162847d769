"""Calibration to the host now: a table is in "host speed at build time" units, and a shared host's
speed drifts (by 4-18% between a build and a later measurement here). The table keeps its reference
network; re-measuring it gives the factor reference now / at build time that converts predictions to
this host's speed now. The factor is cached for a short while (a search, or a burst of `nas latency
predict` calls, measures it once), per table reference and machine.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from nas.files import write_text_atomic
from nas.latency.profile import Machine
from nas.latency.table import LatencyTable, TableError, network_id

MAX_AGE_S = 300.0


def cache_file() -> Path:
    root = Path(os.environ.get("NAS_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hybrid-nas")
    return root / "calibration.json"


def _cache_key(table: LatencyTable) -> str:
    assert table.reference is not None
    ref = table.reference
    return json.dumps([network_id(ref.plan, ref.input_shape), ref.ms, table.profile.model_dump(mode="json")],
                      sort_keys=True)


def _read_cache() -> dict[str, dict[str, float]]:
    try:
        data = json.loads(cache_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def host_speed(table: LatencyTable, max_age_s: float = MAX_AGE_S) -> float:
    """Reference now / at build time on this host (> 1: slower now); measured at most every `max_age_s`."""
    from nas.latency.profiler import Measurer  # builds networks: only when calibrating

    if table.reference is None:
        raise TableError("the table has no reference measurement: finish its build first")
    if not table.profile.matches_here():
        raise TableError(f"cannot calibrate here: the table was measured on {table.profile.machine}, this machine is "
                         f"{Machine.here(table.profile.device)}")
    key, cache = _cache_key(table), _read_cache()
    hit = cache.get(key)
    if hit and time.time() - hit.get("at", 0) < max_age_s:
        return float(hit["speed"])
    speed = Measurer(table.profile, table.reference).speed_now()
    cache = {k: v for k, v in _read_cache().items() if time.time() - v.get("at", 0) < max_age_s} | {
        key: {"speed": speed, "at": time.time()}}
    try:
        write_text_atomic(cache_file(), json.dumps(cache))
    except OSError:
        pass  # a read-only home: calibrate again next time
    return speed

"""Hardware latency lookup tables: profiles, the layer profiler, the predictor, calibration and validation.

The names below load on first use (PEP 562): the search config's schema needs only `allocator` and `backends`,
and a worker that never measures (a Tune trial, an evaluation actor) is spared the profiler's imports (scipy
among them: 0.97 s of `python -X importtime` for the package as it was)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.latency.for_search import remeasure_front, search_predictor
    from nas.latency.predictor import LatencyPredictor
    from nas.latency.profile import HardwareProfile, Machine
    from nas.latency.profiler import build_table, validate_table
    from nas.latency.table import LatencyTable, TableError

_WHERE = {"remeasure_front": "for_search", "search_predictor": "for_search", "LatencyPredictor": "predictor",
          "HardwareProfile": "profile", "Machine": "profile", "build_table": "profiler", "validate_table": "profiler",
          "LatencyTable": "table", "TableError": "table"}

__all__ = ["HardwareProfile", "LatencyPredictor", "LatencyTable", "Machine", "TableError", "build_table",
           "remeasure_front", "search_predictor", "validate_table"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'nas.latency' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nas.latency.{_WHERE[name]}"), name)

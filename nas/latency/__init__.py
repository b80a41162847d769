"""Hardware latency lookup tables: profiles, the layer profiler, the predictor, calibration and validation."""

from nas.latency.for_search import remeasure_front, search_predictor
from nas.latency.predictor import LatencyPredictor
from nas.latency.profile import HardwareProfile, Machine
from nas.latency.profiler import build_table, validate_table
from nas.latency.table import LatencyTable, TableError

__all__ = ["HardwareProfile", "LatencyPredictor", "LatencyTable", "Machine", "TableError", "build_table",
           "remeasure_front", "search_predictor", "validate_table"]

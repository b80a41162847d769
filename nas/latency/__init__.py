"""Hardware latency lookup tables: profiles, the layer profiler, the predictor and its validation."""

from nas.latency.predictor import LatencyPredictor, load_predictor
from nas.latency.profile import HardwareProfile, Machine
from nas.latency.profiler import build_table, validate_table
from nas.latency.table import LatencyTable, TableError

__all__ = ["HardwareProfile", "LatencyPredictor", "LatencyTable", "Machine", "TableError", "build_table",
           "load_predictor", "validate_table"]

"""The NAS engine: datasets, supernet training, evaluation, search, latency tables, export."""

__version__ = "0.1.0"

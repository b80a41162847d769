"""What a new worker process imports: Ray starts every actor (evaluation actors, Tune trials)
in a process of its own, whose imports a search waits for, so those modules stay lean."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(module: str, names: list[str]) -> dict[str, bool]:
    code = f"import sys, {module}; print(' '.join(str(n in sys.modules) for n in {names!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return dict(zip(names, (o == "True" for o in out), strict=True))


def test_a_tune_trial_does_not_import_the_latency_profiler():
    loaded = _loaded_after("workers.tune_finalize", ["torch", "nas.latency.profiler", "scipy.stats"])
    assert loaded == {"torch": True, "nas.latency.profiler": False, "scipy.stats": False}


def test_the_latency_package_still_offers_its_names():
    loaded = _loaded_after("nas.latency", ["nas.latency.profiler"])
    assert loaded == {"nas.latency.profiler": False}
    import nas.latency
    from nas.latency import LatencyTable, build_table

    assert LatencyTable.__module__ == "nas.latency.table" and build_table.__module__ == "nas.latency.profiler"
    assert all(getattr(nas.latency, name) for name in nas.latency.__all__)  # each public name has a home

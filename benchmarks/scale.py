"""Scale-out on this machine: the evaluation phase with 1 and 2 Ray workers, and the service's overhead.

1. One trained supernet (hybrid-small on digits, reused from --workdir); the same archs are scored by a pool
   of 1 and of 2 evaluation actors (one core each) on a local Ray; prints both wall times and their ratio.
2. A small search of fixed size (hybrid-small on digits: 400 training steps, 150 evaluations, 3 finalists
   fine-tuned from inherited weights for up to 5 epochs, and no time budget, so that both sides do the same
   work rather than fill the same minutes) in-process (`run_search` in a new process, finalists fine-tuned in
   it) and through the service (`nas serve` on 127.0.0.1: REST submission, the database queue, a Ray task,
   evaluation in it, finalists as Ray Tune trials), timed by the server from submission to the end; the two
   alternate (in-process first in odd pairs, the service first in even ones) for --pairs runs each (a fresh
   server for each service run, none during the in-process one), and it prints each pair's overhead and their
   median.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch
from common import trained_supernet

from nas.evaluate import Evaluator
from nas.pipeline import claim_workdir, run_search
from nas.rundir import CONFIG
from nas.schemas import SearchConfig
from nas.settings import Settings
from tests.e2e.server import Server, wait_for

SMALL_SEARCH = {"space": "hybrid-small", "dataset": {"name": "digits"}, "search": {"workers": 1},
                "budget": {"minutes": None}, "train": {"steps": 400},
                "finalize": {"epochs": 5, "patience": 3, "init": "inherited"}, "trust": {"enabled": False}}


def evaluation_phase(workdir: Path, archs: int) -> None:
    import ray

    from workers.dispatcher import init_ray
    from workers.evaluation_pool import start_actors

    supernet, data, space = trained_supernet(workdir)
    evaluator = Evaluator(supernet, data)
    rng = random.Random(0)
    sample = [space.sample(rng) for _ in range(archs)]
    init_ray(None)
    times = {}
    for size in (1, 2):
        pool = start_actors(evaluator.scorer, size)
        assert pool is not None and pool.size == size
        pool.accuracies(sample[:2])  # warm-up: first calls pay for imports and allocator growth
        t0 = time.perf_counter()
        pool.accuracies(sample)
        times[size] = time.perf_counter() - t0
        pool.close()
    ray.shutdown()
    print(f"evaluation phase, {archs} hybrid-small archs on digits, one core per worker")
    print(f"  1 worker : {times[1]:7.2f} s")
    print(f"  2 workers: {times[2]:7.2f} s   speed-up {times[1] / times[2]:.2f}x")


def _phases(result: Path) -> str:
    timings = json.loads(result.read_text())["timings"]
    return ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in timings.items())


def _through_the_service(config: dict, data_dir: Path) -> tuple[float, str]:
    """A fresh `nas serve` (on the product's defaults) runs the search: seconds from the submission (the server's
    `created_at`) to the end (`finished_at`), and the phases. The benchmark looks every 2 s only, so that its own
    requests do not take the search's CPU."""
    server = Server(data_dir, lease_seconds=Settings().lease_seconds).start()
    try:
        time.sleep(10)  # a deployed server's Ray workers have long finished importing the engine
        with server.client() as client:
            job_id = client.post("/api/v1/searches", json=config).json()["id"]
            body = wait_for(client, job_id, lambda b: b["status"] in ("succeeded", "failed"), timeout=3600, poll=2)
    finally:
        server.terminate()
    assert body["status"] == "succeeded", body
    took = datetime.fromisoformat(body["finished_at"]) - datetime.fromisoformat(body["created_at"])
    return took.total_seconds(), _phases(data_dir / "searches" / job_id / "result.json")


def _in_process(config: SearchConfig, workdir: Path) -> tuple[float, str]:
    """`run_search` in a new process (as `nas search` runs it), timed from the call, after the imports that the
    service's warmed-up workers make before a search arrives. A new process, because the service's worker is new
    in each service run, and a process that has trained before pays no first-use costs (in a second pass over the
    same 200 steps, the first 50 took 1.4-1.5 s less; the second of two searches in one process trained in 8% and
    23% less time than its first, in two tries)."""
    claim_workdir(workdir, config)  # the run folder's own config stamp, which the child reads back
    out = subprocess.run([sys.executable, __file__, "--run-in-process", str(workdir)], check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1]), _phases(workdir / "result.json")


def run_in_process(workdir: Path) -> None:
    """The child side of `_in_process`: prints the seconds `run_search` took."""
    from workers.dispatcher import import_the_engine

    import_the_engine()  # what the service's warm-up has imported before a search arrives
    config = SearchConfig.model_validate_json((workdir / CONFIG).read_text())
    t0 = time.perf_counter()
    run_search(config, workdir=workdir)
    print(time.perf_counter() - t0)


def service_overhead(pairs: int) -> None:
    """`pairs` runs of each, alternating in the order in-process, service, service, in-process, ... so that the
    host's drift over minutes falls on both alike; the overhead is the median of the pairs'. Each service run has
    a fresh server, started before the clock starts (as a deployed one would be)."""
    config = SearchConfig.model_validate(SMALL_SEARCH)
    print("a fixed-size search (hybrid-small, digits, 400 steps, 150 evaluations, 3 finalists x up to 5 epochs, "
          "no time budget)")
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        for pair in range(pairs):
            # no server while the engine runs alone: the service's idle cost (Ray's daemons) is overhead too;
            # every other pair starts with the service, so that a steady drift of the host's speed cancels out
            if pair % 2:
                service, service_phases = _through_the_service(SMALL_SEARCH, Path(folder) / f"service-{pair}")
            local, local_phases = _in_process(config, Path(folder) / f"in-process-{pair}")
            if not pair % 2:
                service, service_phases = _through_the_service(SMALL_SEARCH, Path(folder) / f"service-{pair}")
            ratios.append(service / local)
            print(f"  pair {pair + 1}: in-process run_search {local:7.2f} s   ({local_phases})")
            print(f"          through the service  {service:7.2f} s   ({service_phases}, finalists as Tune trials)"
                  f"   overhead {service - local:+6.2f} s  {100 * (service / local - 1):+.1f}%", flush=True)
    print(f"  overhead, median of {pairs} pairs: {100 * (statistics.median(ratios) - 1):+.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-supernet"))
    parser.add_argument("--archs", type=int, default=40)
    parser.add_argument("--pairs", type=int, default=5, help="in-process / service runs of the search, alternating")
    parser.add_argument("--run-in-process", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.run_in_process:
        return run_in_process(args.run_in_process)
    evaluation_phase(args.workdir, args.archs)
    service_overhead(args.pairs)


if __name__ == "__main__":
    main()

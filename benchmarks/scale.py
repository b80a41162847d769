"""Scale-out on this machine: the evaluation phase with 1 and 2 Ray workers, and the service's overhead.

1. One trained supernet (hybrid-small on digits, reused from --workdir); the same archs are scored by a pool
   of 1 and of 2 evaluation actors (one core each) on a local Ray; prints both wall times and their ratio.
2. A small search of fixed size (hybrid-small on digits: 400 training steps, 150 evaluations, 3 finalists
   fine-tuned from inherited weights for up to 5 epochs, and no time budget, so that both sides do the same
   work rather than fill the same minutes) in-process (`run_search`, finalists fine-tuned in-process) and
   through the service (`nas serve` on 127.0.0.1: REST submission, the database queue, a Ray task,
   evaluation in it, finalists as Ray Tune trials), timed from submission to `succeeded`; prints the
   overhead in seconds and percent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch
from common import trained_supernet

from nas.evaluate import Evaluator
from nas.pipeline import run_search
from nas.schemas import SearchConfig

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _phases(result: Path) -> str:
    timings = json.loads(result.read_text())["timings"]
    return ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in timings.items())


def _through_the_service(config: dict, data_dir: Path) -> tuple[float, str]:
    port = _free_port()
    env = os.environ | {"NAS_ADMIN_TOKEN": "bench", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--data-dir",
                               str(data_dir)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer bench"}, timeout=60) as client:
            deadline = time.time() + 300
            while time.time() < deadline:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            t0 = time.perf_counter()
            job_id = client.post("/api/v1/searches", json=config).json()["id"]
            while (status := client.get(f"/api/v1/jobs/{job_id}").json()["status"]) not in ("succeeded", "failed"):
                time.sleep(0.2)
            elapsed = time.perf_counter() - t0
            assert status == "succeeded", client.get(f"/api/v1/jobs/{job_id}").json()
            return elapsed, _phases(data_dir / "searches" / job_id / "result.json")
    finally:
        server.terminate()
        server.wait(timeout=60)


def service_overhead() -> None:
    config = SearchConfig.model_validate(SMALL_SEARCH)
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        run_search(config, workdir=Path(folder) / "in-process")
        in_process = time.perf_counter() - t0
        phases = _phases(Path(folder) / "in-process" / "result.json")
        service, service_phases = _through_the_service(SMALL_SEARCH, Path(folder) / "service")
    print("a fixed-size search (hybrid-small, digits, 400 steps, 150 evaluations, 3 finalists x up to 5 epochs, "
          "no time budget)")
    print(f"  in-process run_search : {in_process:7.2f} s   ({phases})")
    print(f"  through the service   : {service:7.2f} s   ({service_phases}, finalists as Tune trials)")
    print(f"  overhead              : {service - in_process:+7.2f} s   {100 * (service / in_process - 1):+.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-supernet"))
    parser.add_argument("--archs", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(2)
    evaluation_phase(args.workdir, args.archs)
    service_overhead()


if __name__ == "__main__":
    main()

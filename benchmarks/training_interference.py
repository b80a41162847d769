"""What slows a search's supernet training through the service: Ray's worker process, or the daemons beside it.

The same training (hybrid-small on digits, --steps steps from scratch, 2 torch threads) in a fresh process each
time, in alternating rounds so that every way meets the host's same states:
  plain         a new Python process, nothing else running;
  waker         the same, beside a process that busies one core for 2 ms every 50 ms (4% of a core: about what
                the service's API and Ray's daemons used while a search trained, by benchmarks/scale.py's CPU
                columns);
  memory waker  the same, but the 2 ms sweep over 64 MB (caches and memory bandwidth, as a real daemon's work
                touches memory and a busy loop does not);
  idle server   beside a real idle `nas serve` (its API, Ray's daemons and warm workers; the server runs only
                during these rounds, every process of its session stopped otherwise);
  ray worker    a Ray task in a fresh worker (max_calls=1) of a local Ray started as the service starts it.
Prints each round and the medians' ratios to `plain`.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from interleave import signal_session

WAKER = """
import time
while True:
    start = time.perf_counter()
    while time.perf_counter() - start < 0.002:
        pass
    time.sleep(0.048)
"""

MEMORY_WAKER = """
import time
import numpy as np
memory = np.zeros(8 << 20)  # 64 MB
at = 0
while True:
    start = time.perf_counter()
    while time.perf_counter() - start < 0.002:
        memory[at:at + (1 << 16)] += 1.0  # 512 kB at a time, walking the whole buffer over the wake-ups
        at = (at + (1 << 16)) % memory.size
    time.sleep(0.048)
"""


def train_seconds(steps: int) -> float:
    """Seconds to train a fresh hybrid-small supernet on digits for `steps` steps on 2 torch threads (the data's
    loading not counted)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch
    from common import DEFAULT, untrained_supernet

    from nas.train import train_supernet

    torch.set_num_threads(2)
    config = DEFAULT.model_copy(update={"train": DEFAULT.train.model_copy(update={"steps": steps})})
    supernet, data, _space = untrained_supernet(config)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        train_supernet(supernet, data, config.train, Path(folder))
        return time.perf_counter() - start


def in_new_process(steps: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--child", str(steps)], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def beside(program: str) -> Callable[[int], float]:
    """Training in a new process beside a Python `program` started for it."""

    def run(steps: int) -> float:
        waker = subprocess.Popen([sys.executable, "-c", program])
        try:
            return in_new_process(steps)
        finally:
            waker.kill()
            waker.wait()

    return run


def beside_a_server(sid: int) -> Callable[[int], float]:
    """Training in a new process while the (otherwise stopped) server's session `sid` runs."""

    def run(steps: int) -> float:
        signal_session(sid, signal.SIGCONT)
        try:
            return in_new_process(steps)
        finally:
            signal_session(sid, signal.SIGSTOP)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(train_seconds(args.child))
        return
    import ray

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.e2e.server import Server
    from workers.dispatcher import init_ray

    init_ray(None)
    in_ray_worker = ray.remote(num_cpus=1, max_calls=1, max_retries=0)(train_seconds)
    with tempfile.TemporaryDirectory() as folder:
        server = Server(Path(folder) / "service").start()
        assert server.proc is not None
        try:
            time.sleep(10)  # its warm workers' imports done, as a deployed server's are
            signal_session(server.proc.pid, signal.SIGSTOP)
            ways = {"plain": in_new_process, "waker": beside(WAKER), "memory waker": beside(MEMORY_WAKER),
                    "idle server": beside_a_server(server.proc.pid),
                    "ray worker": lambda steps: ray.get(in_ray_worker.remote(steps))}
            compare(ways, args.steps, args.rounds)
        finally:
            signal_session(server.proc.pid, signal.SIGCONT)
            server.terminate()
    ray.shutdown()


def compare(ways: dict[str, Callable[[int], float]], steps: int, rounds: int) -> None:
    """Each way in turn, `rounds` times; prints each round and the medians' ratios to the first way's."""
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    print(f"training hybrid-small on digits, {steps} steps, 2 torch threads, a fresh process each time")
    for round_ in range(rounds):
        for name, way in ways.items():
            seconds[name].append(way(steps))
        print(f"  round {round_ + 1}: " + "   ".join(f"{name} {s[-1]:6.2f} s" for name, s in seconds.items()),
              flush=True)
    first = statistics.median(next(iter(seconds.values())))
    print("  medians: " + "   ".join(f"{name} {statistics.median(s):6.2f} s ({statistics.median(s) / first:.3f}x)"
                                     for name, s in seconds.items()))


if __name__ == "__main__":
    main()

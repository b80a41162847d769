"""What an idle `nas serve` costs the host: CPU seconds a minute and wake-ups a second, by process.

A fresh server on 127.0.0.1 (SQLite, local Ray), left --settle seconds for its warm-up, then watched for --window
seconds: each process of its session (the API, Ray's daemons and workers) from /proc (user + system CPU time,
voluntary + involuntary context switches of all its threads). On a small host every wake-up of these takes a
core from a search's training (benchmarks/training_interference.py measures what that costs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from interleave import cpu_seconds, process_title, session_members

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.server import Server  # noqa: E402


def context_switches(pids: set[int]) -> dict[int, int]:
    """Each process's context switches so far, summed over its threads (a thread wakes, runs, sleeps: one each)."""
    out = {}
    for pid in pids:
        total = 0
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/status") as status:
                    total += sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended while read
        out[pid] = total
    return out


def watch(sid: int, window: float) -> tuple[dict[str, float], dict[str, float]]:
    """CPU seconds a minute and wake-ups a second of each process title in session `sid` over `window` seconds."""
    pids = session_members(sid)
    titles = {pid: process_title(pid) for pid in pids}
    cpu0, switches0 = cpu_seconds(sid), context_switches(pids)
    time.sleep(window)
    cpu1, switches1 = cpu_seconds(sid), context_switches(pids)
    cpu: dict[str, float] = defaultdict(float)
    wakes: dict[str, float] = defaultdict(float)
    for pid, seconds in cpu1.items():
        title = titles.get(pid) or process_title(pid)
        cpu[title] += (seconds - cpu0.get(pid, 0.0)) * 60 / window
        wakes[title] += (switches1.get(pid, 0) - switches0.get(pid, 0)) / window
    return cpu, wakes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = Server(Path(folder)).start()
        assert server.proc is not None
        try:
            time.sleep(args.settle)
            cpu, wakes = watch(server.proc.pid, args.window)
        finally:
            server.terminate()
    print(f"an idle server over {args.window:.0f} s (after {args.settle:.0f} s to settle), by process")
    print(f"  {'all':28s} {sum(cpu.values()):5.2f} CPU s/min  {sum(wakes.values()):6.0f} wake-ups/s")
    for title, seconds in sorted(cpu.items(), key=lambda item: -item[1]):
        if seconds >= 0.01 or wakes[title] >= 1:
            print(f"  {title:28s} {seconds:5.2f} CPU s/min  {wakes[title]:6.0f} wake-ups/s")


if __name__ == "__main__":
    main()

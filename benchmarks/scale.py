"""Scale-out on this machine: the evaluation phase with 1 and 2 Ray workers, and the service's overhead.

1. One trained supernet (hybrid-small on digits, reused from --workdir); the same archs are scored by a pool
   of 1 and of 2 evaluation actors (one core each) on a local Ray; prints both wall times and their ratio.
2. A small search of fixed size (hybrid-small on digits: 400 training steps, 150 evaluations, 3 finalists
   fine-tuned from inherited weights for up to 5 epochs, and no time budget, so that both sides do the same
   work rather than fill the same minutes) in-process (`run_search` in a new process, finalists fine-tuned in
   it) and through the service (a fresh `nas serve` on 127.0.0.1: REST submission, the database queue, a Ray
   task, evaluation in it, finalists as Ray Tune trials), from submission to the end. The two run interleaved:
   in turns of --slice seconds, one side runs while every process of the other is stopped, so both meet
   the host's same states; each side's time is the turns it ran in. Prints each of --pairs pairs' overhead
   and their median.
"""

from __future__ import annotations

import argparse
import json
import random
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import torch
from common import trained_supernet
from interleave import Side, interleave

from nas.evaluate import Evaluator
from nas.pipeline import claim_workdir, run_search
from nas.progress import Reporter
from nas.rundir import CONFIG
from nas.schemas import SearchConfig
from nas.settings import Settings
from nas.store import Database, repo
from nas.store.models import FINISHED
from tests.e2e.server import Server

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


def in_process_side(config: SearchConfig, workdir: Path) -> tuple[Side, subprocess.Popen]:
    """`run_search` in a new process (as `nas search` runs it) that has made the imports the service's
    warmed-up workers make before a search arrives and waits for the word to start. A new process, because the
    service's worker is new in each service run, and a process that has trained before pays no first-use costs
    (in a second pass over the same 200 steps, the first 50 took 1.4-1.5 s less; the second of two searches in
    one process trained in 8% and 23% less time than its first, in two tries)."""
    claim_workdir(workdir, config)  # the run folder's own config stamp, which the child reads back
    child = subprocess.Popen([sys.executable, __file__, "--run-in-process", str(workdir)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert child.stdin and child.stdout
    if child.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the in-process side did not start (exit code {child.wait()})")
    said: list[str] = []

    def go() -> None:
        assert child.stdin
        child.stdin.write("go\n")
        child.stdin.flush()

    def finished() -> bool:
        assert child.stdout
        if not said and select.select([child.stdout], [], [], 0)[0]:
            said.append(child.stdout.readline().strip())
            if said[0] != "done":
                raise RuntimeError(f"the in-process search failed (exit code {child.wait()})")
        return bool(said)

    return Side("in-process", child.pid, go, finished), child


def service_side(server: Server, database: Database, config: dict) -> tuple[Side, list[str]]:
    """The search submitted to a running server when its turn first comes; finished when the server's database
    says so (read by the benchmark itself: the server may be stopped when it looks). The database is read after
    its write-ahead log changed, or a second after the last read: a query on every 50-ms poll took 2.6 CPU s of the service's turns in a
    95-s search (the in-process side's check: 0.2 s), time its training lost to the benchmark."""
    job: list[str] = []
    log = Path(f"{database.engine.url.database}-wal")
    last_read: tuple[int, int] | None = None  # the log's mtime and size at the last read
    read_at, done = 0.0, False

    def submit() -> None:
        with server.client() as client:
            job.append(client.post("/api/v1/searches", json=config).json()["id"])

    def finished() -> bool:
        nonlocal last_read, read_at, done
        state, now = log.stat(), time.monotonic()
        if done or ((state.st_mtime_ns, state.st_size) == last_read and now - read_at < 1.0):
            return done
        last_read, read_at = (state.st_mtime_ns, state.st_size), now
        done = search_status(database, job[0]) in FINISHED
        return done

    assert server.proc is not None
    return Side("service", server.proc.pid, submit, finished), job


def run_in_process(workdir: Path) -> None:
    """The child side of `in_process_side`: says "ready" once imported, starts on a line on stdin, says "done"."""
    from workers.dispatcher import import_the_engine

    import_the_engine()  # what the service's warm-up has imported before a search arrives
    config = SearchConfig.model_validate_json((workdir / CONFIG).read_text())
    print("ready", flush=True)
    sys.stdin.readline()
    clock = PhaseClock()
    run_search(config, clock, workdir=workdir)
    clock.starts.append(("end", time.time()))
    (workdir / PHASES).write_text(json.dumps(clock.starts))
    print("done", flush=True)


PHASES = "phases.json"  # the in-process side's phase starts, in epoch seconds


class PhaseClock(Reporter):
    """When each phase of a search started (epoch seconds)."""

    def __init__(self) -> None:
        self.starts: list[tuple[str, float]] = []

    def phase(self, name: str, total: int) -> None:
        if name not in dict(self.starts):
            self.starts.append((name, time.time()))


def service_phases(database: Database, job_id: str) -> list[tuple[str, float]]:
    """When each phase of the service's search started, and when it ended, from its events (epoch seconds)."""
    events: list = []
    with database.session(readonly=True) as s:
        while batch := repo.events_after(s, job_id, events[-1].id if events else 0):
            events += batch
    starts: list[tuple[str, float]] = []
    for event in events:
        moment = repo.aware(event.created_at).timestamp()
        name = event.data.get("phase") if event.kind == "progress" else None
        if name and name not in dict(starts):
            starts.append((name, moment))
        elif event.kind == "status" and event.data.get("status") == "succeeded":
            starts.append(("end", moment))
    return starts


def _moments(side: Side, starts: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """The phases' starts after a 'start' phase from the side's first turn (submission) to the first of them."""
    return [("start", side.turns[0][0]), *starts]


def phase_seconds(side: Side, starts: list[tuple[str, float]]) -> str:
    """Each phase's seconds of the side's own running time; 'start' is from its clock's start to the first."""
    moments = _moments(side, starts)
    return ", ".join(f"{name} {side.active(a, b):.1f} s"
                     for (name, a), (_next, b) in zip(moments, moments[1:], strict=False))


def cpu_use(side: Side, starts: list[tuple[str, float]], phase: str | None = None) -> str:
    """Whose CPU seconds a phase (by default the whole run) took, by process title, beside the side's own
    seconds in it (a 2-core host gives at most twice those). Counted in whole turns: from the start of the turn
    the phase starts in to the end of the one it ends in."""
    moments = _moments(side, starts)
    names = [name for name, _moment in moments]
    first, last = (names.index(phase), names.index(phase) + 1) if phase else (0, len(moments) - 1)
    start = max((a for a, _b in side.turns if a <= moments[first][1]), default=moments[first][1])
    end = next((b for _a, b in side.turns if b >= moments[last][1]), moments[last][1])
    used = sorted(side.cpu_between(start, end).items(), key=lambda item: -item[1])
    top = ", ".join(f"{title} {seconds:.1f}" for title, seconds in used[:6] if seconds >= 0.05)
    total = sum(seconds for _title, seconds in used)
    return f"{phase or 'whole run'}: {total:.1f} CPU s in {side.active(start, end):.1f} s ({top})"


class Pair(NamedTuple):
    local: Side
    service: Side
    local_phases: str
    service_phases: str
    cpu: list[str]  # each side's CPU use in training and in the whole run


def one_pair(config: SearchConfig, folder: Path, service_first: bool, slice_s: float) -> Pair:
    """The in-process and the service side of the same search, interleaved, with their phases' seconds and
    CPU use."""
    side, child = in_process_side(config, folder / "in-process")
    side.signal(signal.SIGSTOP)  # stopped while the server starts
    server = Server(folder / "service", lease_seconds=Settings().lease_seconds).start()
    database = Database(Settings(data_dir=server.data_dir).db_url)  # the server's own (its default)
    try:
        time.sleep(10)  # a deployed server's Ray workers have long finished importing the engine
        service, job = service_side(server, database, SMALL_SEARCH)
        try:
            interleave([service, side] if service_first else [side, service], slice_s)
        finally:
            for each in (service, side):
                each.signal(signal.SIGCONT)
        status = search_status(database, job[0])
        local_starts = json.loads((folder / "in-process" / PHASES).read_text())
        service_starts = service_phases(database, job[0])
        phases = (phase_seconds(side, local_starts), phase_seconds(service, service_starts))
        cpu = [f"{each.name} {cpu_use(each, starts, phase)}" for phase in ("train", None)
               for each, starts in ((side, local_starts), (service, service_starts))]
    finally:
        database.dispose()
        server.terminate()
        child.kill()
        child.wait(timeout=120)
    assert status == "succeeded", f"the service's search ended {status}: {server.log}"
    return Pair(side, service, *phases, cpu)


def search_status(database: Database, job_id: str) -> str | None:
    with database.session(readonly=True) as s:
        job = repo.get_job(s, job_id)
        return job.status if job else None


def service_overhead(pairs: int, slice_s: float) -> None:
    """`pairs` interleaved runs of the same search in-process and through the service (a fresh server and a
    fresh process each time, the side that starts alternating); the overhead is the median of the pairs'."""
    config = SearchConfig.model_validate(SMALL_SEARCH)
    print("a fixed-size search (hybrid-small, digits, 400 steps, 150 evaluations, 3 finalists x up to 5 epochs, "
          f"no time budget), both sides interleaved in {slice_s:g}-s slices")
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        for pair in range(pairs):
            result = one_pair(config, Path(folder) / f"pair-{pair}", service_first=bool(pair % 2), slice_s=slice_s)
            local, service = result.local.seconds, result.service.seconds
            ratios.append(service / local)
            print(f"  pair {pair + 1}: in-process run_search {local:7.2f} s   ({result.local_phases})")
            print(f"          through the service  {service:7.2f} s   ({result.service_phases}, finalists as Tune trials)"
                  f"   overhead {service - local:+6.2f} s  {100 * (service / local - 1):+.1f}%")
            print("\n".join(f"          {line}" for line in result.cpu))
            print(f"          the benchmark's own CPU in each side's turns: in-process {result.local.watching:.1f} s,"
                  f" service {result.service.watching:.1f} s", flush=True)
    print(f"  overhead, median of {pairs} pairs: {100 * (statistics.median(ratios) - 1):+.1f}%"
          f"   (pairs from {100 * (min(ratios) - 1):+.1f}% to {100 * (max(ratios) - 1):+.1f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-supernet"))
    parser.add_argument("--archs", type=int, default=40)
    parser.add_argument("--pairs", type=int, default=5, help="in-process / service runs of the search, alternating")
    parser.add_argument("--slice", type=float, default=2.0, help="seconds each side runs before the other's turn")
    parser.add_argument("--run-in-process", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.run_in_process:
        return run_in_process(args.run_in_process)
    evaluation_phase(args.workdir, args.archs)
    service_overhead(args.pairs, args.slice)


if __name__ == "__main__":
    main()

"""Two sides of a comparison run interleaved: in turns, one side's processes run while every process of the
other is stopped (SIGSTOP), so both meet the host's same states; each side's time is the turns it ran in, and
each of its processes' CPU seconds is read from /proc at the end of every turn. Used by benchmarks/scale.py.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path


def session_stats(sid: int) -> dict[int, list[str]]:
    """/proc/PID/stat's fields after the name, for each process of session `sid`. A server's Ray workers run in
    process groups of their own, but in the server's session."""
    members = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # exited meanwhile
            if int(fields[3]) == sid:  # after the name: state, ppid, pgrp, session
                members[int(entry.name)] = fields
    return members


def session_members(sid: int) -> set[int]:
    return set(session_stats(sid))


def signal_session(sid: int, sig: int) -> None:
    """Signal every process of session `sid`, again until no new one appears (a process may start one just
    before it is stopped)."""
    signalled: set[int] = set()
    while fresh := session_members(sid) - signalled:
        for pid in fresh:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass  # exited meanwhile
        signalled |= fresh


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_title(pid: int) -> str:
    """What a process calls itself: Ray's workers set their title to `ray::<task or actor>`; a Python process
    is named by its script or module."""
    try:
        words = [w.decode(errors="replace") for w in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if w]
    except OSError:
        return "?"
    if not words:
        return "?"
    if words[0].startswith("ray::"):
        return words[0].split()[0]
    program = Path(words[0].split()[0]).name
    if program.startswith("python"):
        rest = words[1:]
        while rest and rest[0].startswith("-") and rest[0] != "-m":
            rest = rest[1:]  # an interpreter option such as -u
        module = rest[1:2] if rest[:1] == ["-m"] else rest[:1]
        return f"python {Path(module[0]).name}" if module else program
    return program


def cpu_seconds(sid: int) -> dict[int, float]:
    """Each process's user + system CPU seconds so far (fields 14 and 15 of /proc/PID/stat)."""
    return {pid: (int(f[11]) + int(f[12])) / CLOCK_TICKS for pid, f in session_stats(sid).items()}


class Side:
    """One side of the comparison: a session's processes, which run only while the benchmark lets them, and
    how many seconds they have run since the side's clock started."""

    def __init__(self, name: str, sid: int, start: Callable[[], None], finished: Callable[[], bool]):
        self.name, self.sid, self.start, self.finished = name, sid, start, finished
        self.done = False
        self.turns: list[tuple[float, float]] = []  # (from, to) in epoch seconds: when it ran
        self.baseline: dict[int, float] = {}  # each process's CPU seconds when the side was first stopped
        self.cpu: list[dict[int, float]] = []  # each process's CPU seconds at the end of each turn
        self.titles: dict[int, str] = {}
        self.watching = 0.0  # the benchmark's own CPU seconds in this side's turns (its polls of `finished`)

    def account(self) -> None:
        """Note each process's CPU seconds (after a turn, while stopped); a process that exits mid-turn loses
        that turn's share."""
        seconds = cpu_seconds(self.sid)
        for pid in seconds:
            title = process_title(pid)
            # a pooled worker keeps the name of its last work; one that ended as it was read keeps its last name
            if title not in ("ray::IDLE", "?") or pid not in self.titles:
                self.titles[pid] = title
        self.cpu.append(seconds)

    def cpu_between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds per process title in the turns that ended between two moments (epoch seconds)."""
        before = dict(self.baseline)
        used: dict[str, float] = {}
        for (_a, b), seconds in zip(self.turns, self.cpu, strict=True):
            if start < b <= end:
                for pid, total in seconds.items():
                    title = self.titles[pid]
                    used[title] = used.get(title, 0.0) + total - before.get(pid, 0.0)
            before |= seconds
        return used

    @property
    def seconds(self) -> float:
        return sum(b - a for a, b in self.turns)

    def active(self, start: float, end: float) -> float:
        """The seconds this side ran between two moments (epoch seconds)."""
        return sum(max(0.0, min(b, end) - max(a, start)) for a, b in self.turns)

    def signal(self, sig: int) -> None:
        signal_session(self.sid, sig)


def interleave(sides: list[Side], slice_s: float, poll_s: float = 0.05, timeout: float = 3600) -> None:
    """Run the sides in turn, `slice_s` seconds each, every other side stopped (SIGSTOP to each process of its
    session: a server's Ray daemons and workers too), until each has finished; each side's seconds are the
    slices it ran in. Both sides meet the same host states: on this host the same search's time varied
    60-98 s between runs minutes apart, far more than the overhead to be measured."""
    for side in sides:
        side.signal(signal.SIGSTOP)
        side.baseline = cpu_seconds(side.sid)
    deadline = time.time() + timeout
    while not all(side.done for side in sides):
        for side in (s for s in sides if not s.done):
            side.signal(signal.SIGCONT)
            began, watching = time.time(), time.process_time()
            if not side.turns:
                side.start()
            while time.time() - began < slice_s and not side.finished():
                time.sleep(poll_s)
            side.done = side.finished()
            side.turns.append((began, time.time()))
            side.watching += time.process_time() - watching
            side.signal(signal.SIGSTOP)  # a finished side too: its teardown is not the other side's cost
            side.account()
        if time.time() > deadline:
            raise TimeoutError(f"not finished within {timeout} s: {[s.name for s in sides if not s.done]}")

"""DatabaseReporter: the engine's progress, candidates and front, written to the database as they happen.

A heartbeat thread renews the search's lease and reads its cancel flag. Every write is fenced by
the attempt number: if this attempt lost the search (lease expired, requeued), writes raise
StaleAttempt and `should_stop()` turns true so the engine stops at its next safe point.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nas.progress import Cancelled, Reporter
from nas.schemas import Candidate
from nas.store import Database, StaleAttempt, repo

log = logging.getLogger(__name__)

# share of the whole run each phase takes, for one progress figure across phases
PHASE_SPAN = {"latency": (0.0, 0.05), "train": (0.05, 0.75), "search": (0.75, 0.9), "finetune": (0.9, 0.94),
              "finalize": (0.94, 0.95), "trust": (0.95, 0.99), "remeasure": (0.99, 1.0)}


class DatabaseReporter(Reporter):
    def __init__(self, db: Database, *, job_id: str, attempt: int, owner: str, lease_seconds: float,
                 min_interval: float = 0.5):
        self.db, self.job_id, self.attempt, self.owner = db, job_id, attempt, owner
        self.lease_seconds, self.min_interval = lease_seconds, min_interval
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._last_write, self._last_phase = 0.0, ""
        self._stop = threading.Event()
        self._beat()  # take the lease under this worker's name at once
        self._thread = threading.Thread(target=self._heartbeat, name=f"heartbeat-{job_id[:8]}", daemon=True)
        self._thread.start()

    def _ids(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "attempt": self.attempt}

    def _beat(self) -> None:
        try:
            if repo.renew_lease(self.db, owner=self.owner, lease_seconds=self.lease_seconds, **self._ids()):
                self.cancelled.set()
        except StaleAttempt:
            self.lost.set()
        except Exception:  # a database hiccup: the next beat retries before the lease runs out
            log.exception("heartbeat failed")

    def _heartbeat(self) -> None:
        # often enough to keep the lease, and to notice a cancel request within seconds
        while not self._stop.wait(min(self.lease_seconds / 3, 2.0)):
            self._beat()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.lost.is_set()

    @contextmanager
    def holding(self) -> Iterator[None]:
        # the job's row stays locked until the file is in place: no requeue can hand the job to another
        # attempt between the ownership check and the rename
        try:
            with self.db.session() as s:
                repo.hold(s, **self._ids())
                yield
        except StaleAttempt:
            self.lost.set()
            raise Cancelled(f"attempt {self.attempt} no longer owns job {self.job_id}") from None

    def _guard(self, write, *args, **kwargs) -> None:
        try:
            write(self.db, *args, **self._ids(), **kwargs)
        except StaleAttempt:
            self.lost.set()

    def progress(self, name: str, step: int, total: int, metrics: dict[str, float] | None = None) -> None:
        now = time.monotonic()
        if step < total and name == self._last_phase and now - self._last_write < self.min_interval:
            return  # throttle: the database sees at most a few progress writes per second, and every new phase
        self._last_write, self._last_phase = now, name
        lo, hi = PHASE_SPAN.get(name, (0.0, 1.0))
        overall = lo + (hi - lo) * (step / max(1, total))
        self._guard(repo.record_progress, phase=name, step=step, total=total, progress=overall, metrics=metrics or {})

    def phase(self, name: str, total: int) -> None:
        self.progress(name, 0, total)

    def candidate(self, candidate: Candidate) -> None:
        self._guard(repo.add_candidate, candidate=candidate)

    def front(self, front: list[Candidate]) -> None:
        self._guard(repo.set_front, front=front)

    def message(self, text: str, **data: Any) -> None:
        self._guard(repo.record_message, text=text)

"""Reporter: how long-running work tells the outside world what it is doing.

The engine calls a reporter; the CLI shows a progress bar, the workers write the same events to
the database. `should_stop()` lets the caller cancel between steps.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from nas.schemas import Candidate


class Reporter:
    """Receives progress events. The base class ignores them (library use without output)."""

    def phase(self, name: str, total: int) -> None:
        """A phase starts: 'train', 'search', 'finalize', 'test'; `total` steps."""

    def progress(self, name: str, step: int, total: int, metrics: dict[str, float] | None = None) -> None:
        """`step` of `total` done in phase `name`, with metrics such as loss or throughput."""

    def candidate(self, candidate: Candidate) -> None:
        """A candidate has been evaluated."""

    def front(self, front: list[Candidate]) -> None:
        """The Pareto front changed."""

    def message(self, text: str, **data: Any) -> None:
        """A free-form note (e.g. 'resumed from step 200')."""

    def should_stop(self) -> bool:
        """True asks the work to stop at the next safe point (cancellation)."""
        return False

    def holding(self) -> AbstractContextManager[Any]:
        """Held while a file of the run is renamed into place (a `nas.files.Guard`). A reporter for a queued
        job holds the job and raises Cancelled if this attempt no longer owns it, so a lost attempt never
        replaces the owner's checkpoint, weights or results."""
        return nullcontext()


class ForwardingReporter(Reporter):
    """Passes every event to another reporter; subclasses add to the events they care about."""

    def __init__(self, inner: Reporter):
        self.inner = inner

    def phase(self, name: str, total: int) -> None:
        self.inner.phase(name, total)

    def progress(self, name: str, step: int, total: int, metrics: dict[str, float] | None = None) -> None:
        self.inner.progress(name, step, total, metrics)

    def candidate(self, candidate: Candidate) -> None:
        self.inner.candidate(candidate)

    def front(self, front: list[Candidate]) -> None:
        self.inner.front(front)

    def message(self, text: str, **data: Any) -> None:
        self.inner.message(text, **data)

    def should_stop(self) -> bool:
        return self.inner.should_stop()

    def holding(self) -> AbstractContextManager[Any]:
        return self.inner.holding()


class Cancelled(Exception):
    """Raised inside the engine when the reporter asked it to stop."""


class RecordingReporter(Reporter):
    """Keeps every event in memory (tests, notebooks)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def phase(self, name: str, total: int) -> None:
        self.events.append(("phase", (name, total)))

    def progress(self, name: str, step: int, total: int, metrics: dict[str, float] | None = None) -> None:
        self.events.append(("progress", (name, step, total, dict(metrics or {}))))

    def candidate(self, candidate: Candidate) -> None:
        self.events.append(("candidate", candidate))

    def front(self, front: list[Candidate]) -> None:
        self.events.append(("front", list(front)))

    def message(self, text: str, **data: Any) -> None:
        self.events.append(("message", text))

    def of(self, kind: str) -> list[Any]:
        return [payload for k, payload in self.events if k == kind]

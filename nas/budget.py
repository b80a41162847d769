"""The search's time budget: one clock that its phases share, and the ETA it makes honest.

`budget: {minutes: M}` is the wall time a whole search may take. Each phase is given, when it starts, its
share of what is left, weighed against the phases still to come, so time a phase does not use flows on to
the next: supernet training plans its steps to fit its allowance, the search stops asking for archs when its
allowance is spent, and the finalists train until validation stops improving or their allowance runs out.
A resumed search counts the training time its earlier attempts spent (kept in the training checkpoint).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

# share of the budget each phase is planned to take; trust takes part of the finalists' share when it is on
SHARES = {"train": 0.5, "search": 0.1, "finetune": 0.4}
SHARES_WITH_TRUST = {"train": 0.45, "search": 0.1, "finetune": 0.27, "trust": 0.18}


def auto_epochs(n_train: int) -> int:
    """Supernet epochs when the config names none: 25 at 1,000 training examples, growing with the square root
    of the training set (a larger set has more to learn and overfits later), between 20 and 200."""
    return int(min(200, max(20, round(25 * math.sqrt(n_train / 1000)))))


class Budget:
    """Wall-clock allowances for a search's phases (none at all when `minutes` is None)."""

    def __init__(self, minutes: float | None, phases: dict[str, float], clock: Callable[[], float] = time.monotonic):
        self.total = None if minutes is None else 60.0 * minutes
        self.phases, self.clock = dict(phases), clock
        self.started = clock()
        self.credit = 0.0  # seconds earlier attempts spent (a resumed search)
        self.current: tuple[str, Deadline, float] | None = None  # (phase, its deadline, when it began)
        self.shares_begun = False

    def spend_earlier(self, seconds: float) -> None:
        """Count `seconds` that earlier attempts of this search already spent."""
        self.credit = max(self.credit, seconds)

    def elapsed(self) -> float:
        return self.clock() - self.started + self.credit

    def remaining(self) -> float | None:
        """Seconds left of the whole budget (None: no budget)."""
        return None if self.total is None else max(0.0, self.total - self.elapsed())

    def allowance(self, phase: str) -> float | None:
        """Seconds `phase`, starting now, may take: its share of what is left against the phases after it."""
        left = self.remaining()
        if left is None or phase not in self.phases:
            return left
        names = list(self.phases)
        later = sum(self.phases[n] for n in names[names.index(phase):])
        return left * self.phases[phase] / later

    def start(self, phase: str) -> Deadline:
        """`phase` begins now: its deadline (its allowance from now), which `eta` reads too."""
        self.current = (phase, Deadline(self.allowance(phase), self.clock), self.clock())
        self.shares_begun = self.shares_begun or phase in self.phases
        return self.current[1]

    def eta(self, step: int, total: int) -> float | None:
        """Seconds until the search ends, `step` of `total` into the current phase: the phase's rate so far (capped
        by its deadline) plus the budget after that deadline, which the phases still to come are given (their
        unused time flows on, so a search ends by its budget). None without a budget or a phase."""
        left = self.remaining()
        if left is None or self.current is None:
            return None
        phase, deadline, began = self.current
        by_rate = (self.clock() - began) / step * (total - step) if step > 0 else None
        phase_left = deadline.left() if phase in self.phases else by_rate
        if by_rate is not None and phase_left is not None:
            phase_left = min(phase_left, by_rate)
        if phase_left is None:
            return None
        if phase not in self.phases:  # a phase outside the shares: before them all (latency), or after them
            later = 0.0 if self.shares_begun else left
        else:
            later = 0.0 if phase == list(self.phases)[-1] else left - (deadline.left() or 0.0)
        return min(left, phase_left + max(0.0, later))


class Deadline:
    """A phase's allowance as a point on the monotonic clock; `None` seconds never expires."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.end = None if seconds is None else clock() + seconds

    def left(self) -> float | None:
        return None if self.end is None else max(0.0, self.end - self.clock())

    def passed(self) -> bool:
        return self.end is not None and self.clock() >= self.end

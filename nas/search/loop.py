"""The search loop: ask, evaluate, tell, until a budget of distinct archs is evaluated."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nas.budget import Deadline
from nas.progress import Cancelled, Reporter
from nas.schemas import Candidate
from nas.search.objectives import Objectives
from nas.search.pareto import pareto_front
from nas.search.strategies import Strategy
from search_spaces import Arch


def front_of(candidates: list[Candidate], objectives: Objectives) -> list[Candidate]:
    """The feasible candidates that no other feasible candidate dominates."""
    feasible = [c for c in candidates if c.feasible]
    if not feasible:
        return []
    points = np.stack([objectives.minimized(c.metrics) for c in feasible])
    return [feasible[i] for i in pareto_front(points)]


# (archs) -> (metrics, the worker that evaluated it) per arch, in order
BatchEvaluate = Callable[[list[Arch]], list[tuple[dict[str, float], str]]]


def run_strategy(
    strategy: Strategy,
    evaluate: BatchEvaluate,
    budget: int,
    reporter: Reporter,
    population: int,
    done: Sequence[Candidate] = (),
    batch: int = 1,
    deadline: Deadline | None = None,
) -> list[Candidate]:
    """Evaluate `budget` distinct archs proposed by `strategy`, counting those earlier attempts evaluated
    (`done`: the strategy learns them first); report each candidate and front change. Up to `batch` archs are
    asked before their metrics are told, so that many workers evaluate at once; their tells follow in ask
    order, which keeps a seeded search reproducible for a given batch size. Once `deadline` has passed no more
archs are asked for: the search ends with what it has."""
    objectives = strategy.objectives
    seen: dict[str, Candidate] = {c.arch_id: c for c in done[:budget]}
    strategy.resume([(strategy.space.parse(c.arch), c.metrics) for c in seen.values()])
    front_ids: list[str] = []
    asks, max_asks = 0, budget * 20  # a small space may run out of new archs
    reporter.phase("search", budget)
    for c in seen.values():  # again: a crash may have come between the log and the reporter
        reporter.candidate(c)
    if seen:
        front = front_of(list(seen.values()), objectives)
        front_ids = [c.arch_id for c in front]
        reporter.front(front)
        reporter.progress("search", len(seen), budget, {"front_size": len(front)})
    while len(seen) < budget and asks < max_asks:
        if reporter.should_stop():
            raise Cancelled(f"cancelled after {len(seen)} evaluations")
        if deadline is not None and deadline.passed():
            reporter.message(f"search stopped after {len(seen)} of {budget} evaluations: its share of the time "
                             "budget is spent")
            break
        new: dict[str, Arch] = {}
        repeats: list[Arch] = []  # asked again while its first ask is still being evaluated
        while len(new) < min(batch, budget - len(seen)) and asks < max_asks:
            arch = strategy.ask()
            asks += 1
            if arch.id in seen:
                strategy.tell(arch, seen[arch.id].metrics)
            elif arch.id in new:
                repeats.append(arch)
            else:
                new[arch.id] = arch
        for arch, (metrics, worker) in zip(new.values(), evaluate(list(new.values())), strict=True):
            strategy.tell(arch, metrics)
            cand = Candidate(arch_id=arch.id, arch=arch.to_dict(), metrics=metrics, worker=worker,
                             feasible=objectives.feasible(metrics), generation=len(seen) // population)
            seen[arch.id] = cand
            reporter.candidate(cand)
        for arch in repeats:
            strategy.tell(arch, seen[arch.id].metrics)
        if not new:
            continue
        front = front_of(list(seen.values()), objectives)
        if [c.arch_id for c in front] != front_ids:
            front_ids = [c.arch_id for c in front]
            reporter.front(front)
        best = max((c.metrics.get("accuracy", 0.0) for c in front), default=0.0)
        reporter.progress("search", len(seen), budget, {"front_size": len(front), "best_accuracy": best})
    return list(seen.values())

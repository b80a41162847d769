"""Search strategies behind one ask/tell interface: NSGA-II, regularized evolution, random.

ask() proposes an arch; tell(arch, metrics) reports its metrics. Several asks may precede the
matching tells (for parallel evaluation). A resumed search hands a strategy the candidates its earlier
attempts evaluated (`resume`); NSGA-II keeps its state in an Optuna study whose finished trials are stored in
a database when a `StudyRef` names one (the product's database for a search run by the service, a SQLite
file in the run folder for `nas search`), so a resumed search continues that study.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.study import StudyDirection
from sqlalchemy import event

from nas.registry import Registry
from nas.search.objectives import MAXIMIZE, Objectives
from nas.search.pareto import non_dominated_sort
from search_spaces import Arch, SearchSpaceSpec

if TYPE_CHECKING:
    from nas.schemas import SearchSettings


@dataclass(frozen=True)
class StudyRef:
    """Where a search's Optuna study lives: an SQLAlchemy URL and the study's name in it."""

    storage: str
    name: str

    @classmethod
    def of_job(cls, db_url: str, job_id: str) -> StudyRef:
        """A service search's study: in the product's database, beside its tables, named after the search
        (`optuna-dashboard <database URL>` lists it)."""
        return cls(db_url, f"search-{job_id}")

    def rdb(self) -> optuna.storages.RDBStorage:
        if not self.storage.startswith("sqlite"):
            return optuna.storages.RDBStorage(self.storage)
        # a SQLite database is shared with the product's own sessions: wait for a lock as they do, and commit
        # as they do (write-ahead log, no fsync per commit): NSGA2 commits each finished trial
        from nas.store.db import (
            write_ahead,  # not at the top: nas.store imports this module (through schemas)
        )

        storage = optuna.storages.RDBStorage(self.storage, engine_kwargs={"connect_args": {"timeout": 30}})
        event.listen(storage.engine, "connect", write_ahead)
        storage.engine.dispose()  # connections opened before the listener are not reused
        return storage

    def delete(self) -> None:
        """Remove the study (its search was deleted); nothing happens if it never existed."""
        try:
            optuna.delete_study(study_name=self.name, storage=self.rdb())
        except KeyError:
            pass


class Strategy(ABC):
    """Proposes archs (ask) and learns from their metrics (tell). Register an implementation with
    `@STRATEGIES.register("name")`; `search.strategy` in a config then accepts the name."""

    def __init__(self, space: SearchSpaceSpec, objectives: Objectives, settings: SearchSettings,
                 study: StudyRef | None = None):
        self.space, self.objectives, self.settings = space, objectives, settings
        self.rng = random.Random(settings.seed)

    def resume(self, done: Sequence[tuple[Arch, Mapping[str, float]]]) -> None:
        """Learn from the archs earlier attempts evaluated, in their order."""
        for arch, metrics in done:
            self.tell(arch, metrics)

    @abstractmethod
    def ask(self) -> Arch:
        """The next arch to evaluate."""

    @abstractmethod
    def tell(self, arch: Arch, metrics: Mapping[str, float]) -> None:
        """The metrics of an arch returned by ask()."""

    def discard(self, arch: Arch) -> None:  # noqa: B027  (most strategies keep nothing per ask)
        """An arch returned by ask() that will not be evaluated (a pre-screen turned it down)."""


STRATEGIES: Registry[type[Strategy]] = Registry("search strategy")


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    """Uniform sampling: the baseline every other strategy must beat."""

    def ask(self) -> Arch:
        return self.space.sample(self.rng)

    def tell(self, arch: Arch, metrics: Mapping[str, float]) -> None:
        pass


def mutate(space: SearchSpaceSpec, arch: Arch, rng: random.Random) -> Arch:
    """Change one active choice of `arch` to another allowed value."""
    values = space.to_values(arch)
    active = space.active_dimensions(arch)
    dims = [d for d in space.dimensions() if d.name in active and len(d.choices) > 1]
    dim = rng.choice(dims)
    values[dim.name] = rng.choice([c for c in dim.choices if c != values[dim.name]])
    return space.from_values(values)


@STRATEGIES.register("evolution")
class RegularizedEvolution(Strategy):
    """Aging evolution (Real et al.) made multi-objective: tournaments pick by feasibility, then Pareto rank."""

    def __init__(self, space: SearchSpaceSpec, objectives: Objectives, settings: SearchSettings,
                 study: StudyRef | None = None):
        super().__init__(space, objectives, settings)
        self.population: deque[tuple[Arch, np.ndarray, bool]] = deque()

    def ask(self) -> Arch:
        if len(self.population) < self.settings.population:
            return self.space.sample(self.rng)
        sample = self.rng.sample(list(self.population), min(self.settings.sample_size, len(self.population)))
        feasible = [s for s in sample if s[2]] or sample
        ranks = non_dominated_sort(np.stack([s[1] for s in feasible]))
        parent = feasible[self.rng.choice(ranks[0])][0]
        return mutate(self.space, parent, self.rng)

    def tell(self, arch: Arch, metrics: Mapping[str, float]) -> None:
        self.population.append((arch, self.objectives.minimized(metrics), self.objectives.feasible(metrics)))
        while len(self.population) > self.settings.population:
            self.population.popleft()  # the oldest dies, however good


@STRATEGIES.register("nsga2")
class NSGA2(Strategy):
    """NSGA-II through Optuna's NSGAIISampler (ask/tell), constraints included.

    The sampler asks and is told on a study in memory, over every dimension of the space; each finished trial is
    then copied to the stored study (when a `StudyRef` names one) in one transaction, with the parameters its arch
    uses (as a conditional Optuna search space records them) and the arch's id as a user attribute. Optuna's
    database storage runs three SQL statements per stored parameter (benchmarks/study_storage.py counts them),
    and asking on the stored study itself commits every suggestion (70 per hybrid-small arch): about half of a
    search phase (see the README). A resumed search
    loads the stored trials and continues that study; the dimensions their archs do not use take their first
    choice, and the sampler rebuilds its cache of parent populations."""

    def __init__(self, space: SearchSpaceSpec, objectives: Objectives, settings: SearchSettings,
                 study: StudyRef | None = None):
        super().__init__(space, objectives, settings)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.NSGAIISampler(population_size=settings.population, seed=settings.seed)
        directions = [StudyDirection.MAXIMIZE if n in MAXIMIZE else StudyDirection.MINIMIZE for n in objectives.names]
        self.study = optuna.create_study(directions=directions, sampler=sampler)
        self.stored = None if study is None else optuna.create_study(
            directions=directions, storage=study.rdb(), study_name=study.name, load_if_exists=True,
            sampler=optuna.samplers.RandomSampler(settings.seed))  # never asked: it keeps the finished trials
        self.dimensions = space.dimensions()
        self.distributions: dict[str, optuna.distributions.BaseDistribution] = {
            d.name: optuna.distributions.CategoricalDistribution(list(d.choices)) for d in self.dimensions}
        self.pending: dict[str, list[optuna.trial.Trial]] = {}
        if self.stored is not None:
            self._load_stored()

    def _load_stored(self) -> None:
        """Continue the stored study: its finished trials, in their order, over every dimension. (Trials that an
        earlier version asked on the stored study itself and never told, its attempt killed, are marked failed.)"""
        assert self.stored is not None
        for trial in self.stored.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            self.stored.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        first = {d.name: d.choices[0] for d in self.dimensions}
        self.study.add_trials([optuna.trial.create_trial(
            state=t.state, values=t.values, params=first | t.params, distributions=self.distributions,
            system_attrs=t.system_attrs) for t in self.stored.get_trials(deepcopy=False)])

    def _record(self, trial: optuna.trial.FrozenTrial, arch: Arch) -> None:
        """Store a finished trial of `arch` (a copy of the in-memory one, which this changes: `Study.tell` returns a
        copy) with the parameters its arch uses and the arch's id, keeping its start and end times (the dashboard
        shows how long each evaluation took)."""
        if self.stored is None:
            return
        used = self.space.active_dimensions(arch)
        trial.params = {k: v for k, v in trial.params.items() if k in used}
        trial.distributions = {k: v for k, v in trial.distributions.items() if k in used}
        trial.user_attrs = {"arch_id": arch.id}
        self.stored.add_trial(trial)

    def resume(self, done: Sequence[tuple[Arch, Mapping[str, float]]]) -> None:
        """A stored study already holds what earlier attempts told it; a new one learns the candidates."""
        if self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            return
        for arch, metrics in done:
            trial = optuna.trial.create_trial(
                params=self.space.to_values(arch), distributions=self.distributions,
                values=[float(metrics[n]) for n in self.objectives.names], system_attrs=self._constraints(metrics))
            self.study.add_trial(trial)  # a copy: the study keeps every dimension
            self._record(trial, arch)

    def _constraints(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """The trial attributes Optuna reads constraints from (what Trial.set_constraint stores): <= 0 is feasible."""
        return {f"constraints:{name}": float(v)
                for name, v in zip(self.objectives.constraints, self.objectives.violations(metrics), strict=True)}

    def ask(self) -> Arch:
        trial = self.study.ask()
        values = {d.name: trial.suggest_categorical(d.name, list(d.choices)) for d in self.dimensions}
        arch = self.space.from_values(values)
        self.pending.setdefault(arch.id, []).append(trial)
        return arch

    def _pending(self, arch: Arch) -> optuna.trial.Trial:
        trial = self.pending[arch.id].pop(0)
        if not self.pending[arch.id]:
            del self.pending[arch.id]
        return trial

    def discard(self, arch: Arch) -> None:
        # pruned: not part of any generation
        self._record(self.study.tell(self._pending(arch), state=optuna.trial.TrialState.PRUNED), arch)

    def tell(self, arch: Arch, metrics: Mapping[str, float]) -> None:
        trial = self._pending(arch)
        for key, violation in self._constraints(metrics).items():
            trial.set_constraint(key.split(":", 1)[1], violation)
        self._record(self.study.tell(trial, [float(metrics[n]) for n in self.objectives.names]), arch)


def make_strategy(space: SearchSpaceSpec, objectives: Objectives, settings: SearchSettings,
                  study: StudyRef | None = None) -> Strategy:
    return STRATEGIES[settings.strategy](space, objectives, settings, study)

"""NSGA-II's cost per trial with its Optuna study stored in a database, side by side in one run.

Three ways, each over the same number of trials (hybrid-small's 70 dimensions, two objectives whose values are
random: the cost does not depend on them), on a fresh SQLite file with the product's settings (write-ahead
log, no fsync per commit), or in the database --url names (fresh studies, deleted afterwards):
  - in memory only (no stored study: the sampler's own cost);
  - the strategy as shipped: asked and told in memory, each finished trial copied to the stored study;
  - asking on the stored study itself (Optuna's usual set-up, and this product's before): a commit per
    suggested parameter.
Prints milliseconds per trial, the stored ways' cost over the in-memory one, and the SQL statements storing a
trial runs as shipped (a fixed part and a part per stored parameter, fitted over the trials).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import optuna
import sqlalchemy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.schemas import SearchSettings  # noqa: E402
from nas.search.objectives import Objectives  # noqa: E402
from nas.search.strategies import NSGA2, StudyRef  # noqa: E402
from search_spaces import get_space  # noqa: E402

SPACE = get_space("hybrid-small")
SETTINGS = SearchSettings(strategy="nsga2", population=20, seed=0)
OBJECTIVES = Objectives(["accuracy", "macs"])


def as_shipped(trials: int, study: StudyRef | None) -> tuple[float, list[tuple[int, int]]]:
    """Seconds for `trials` asks and tells of the product's NSGA2 strategy; per stored trial, (parameters
    stored, SQL statements run)."""
    strategy, rng = NSGA2(SPACE, OBJECTIVES, SETTINGS, study), random.Random(0)
    statements, per_trial = 0, []

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    if strategy.stored is not None:  # Optuna's storage engine, under its cache (the one the tests count commits on)
        sqlalchemy.event.listen(strategy.stored._storage._backend.engine, "before_cursor_execute", count)
    t0 = time.perf_counter()
    for _ in range(trials):
        arch, before = strategy.ask(), statements
        strategy.tell(arch, {"accuracy": rng.random(), "macs": rng.random()})
        per_trial.append((len(SPACE.active_dimensions(arch)), statements - before))
    return time.perf_counter() - t0, per_trial


def asking_the_stored_study(trials: int, study: StudyRef) -> float:
    """Seconds for `trials` asks and tells straight on the stored study, every dimension suggested."""
    sampler = optuna.samplers.NSGAIISampler(population_size=SETTINGS.population, seed=SETTINGS.seed)
    stored = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler, storage=study.rdb(),
                                 study_name=study.name)
    dims, rng = SPACE.dimensions(), random.Random(0)
    t0 = time.perf_counter()
    for _ in range(trials):
        trial = stored.ask()
        for d in dims:
            trial.suggest_categorical(d.name, list(d.choices))
        stored.tell(trial, [rng.random(), rng.random()])
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--url", help="a database URL, e.g. postgresql://127.0.0.1/test (default: a SQLite file)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        studies: list[StudyRef] = []

        def fresh(name: str) -> StudyRef:
            studies.append(StudyRef(args.url, f"benchmark-{uuid.uuid4().hex[:8]}-{name}") if args.url else
                           StudyRef(f"sqlite:///{Path(folder) / name}.db", "search"))
            return studies[-1]

        try:
            memory, _ = as_shipped(args.trials, None)
            shipped, stored = as_shipped(args.trials, fresh("shipped"))
            per_parameter = asking_the_stored_study(args.trials, fresh("per-parameter"))
        finally:
            for study in studies:
                study.delete()
    where = args.url.split("://")[0] if args.url else "SQLite"
    print(f"NSGA-II on hybrid-small ({len(SPACE.dimensions())} dimensions), {args.trials} trials, {where}")
    for label, took in (("in memory only", memory), ("as shipped (in memory, each finished trial stored)", shipped),
                        ("asking the stored study", per_parameter)):
        print(f"  {label:52s} {1000 * took / args.trials:7.2f} ms/trial   {took / memory:5.1f}x in memory")
    print(f"  asking the stored study / as shipped: {per_parameter / shipped:.1f}x")
    params, statements = np.array(stored, dtype=float).T
    per_param, fixed = np.polyfit(params, statements, 1)
    print(f"  storing a trial as shipped: {statements.mean():.0f} SQL statements for {params.mean():.0f} parameters "
          f"(mean): {fixed:.1f} + {per_param:.2f} per parameter")


if __name__ == "__main__":
    main()

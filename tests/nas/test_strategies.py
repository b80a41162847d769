"""Conformance tests every strategy inherits, on a cheap analytic objective."""

import random

import numpy as np
import pytest

from nas.progress import RecordingReporter
from nas.schemas import SearchSettings
from nas.search import STRATEGIES, Objectives, make_strategy
from nas.search.loop import front_of, run_strategy
from nas.search.strategies import mutate
from search_spaces import count, get_space

SPACE = get_space("hybrid-small")


def synthetic(arch):
    """A stand-in for accuracy that grows with capacity, plus real MACs."""
    macs = count(SPACE, arch).macs
    noise = random.Random(arch.id).random() * 0.05
    return {"accuracy": min(1.0, 0.5 + 0.45 * np.log1p(macs / 1e5) / np.log1p(30) + noise), "macs": float(macs)}


def synthetic_batch(archs):
    return [(synthetic(a), f"worker-{i % 2}") for i, a in enumerate(archs)]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategy_proposes_members_and_accepts_batched_tells(name):
    settings = SearchSettings(strategy=name, population=6, evaluations=20, seed=1)
    strategy = make_strategy(SPACE, Objectives(["accuracy", "macs"]), settings)
    for _ in range(4):
        archs = [strategy.ask() for _ in range(3)]  # several asks before their tells
        for arch in archs:
            assert SPACE.contains(arch)
        for arch in archs:
            strategy.tell(arch, synthetic(arch))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_constraints_keep_infeasible_archs_off_the_front(name):
    bound = 600_000.0
    objectives = Objectives(["accuracy", "macs"], {"macs": bound})
    settings = SearchSettings(strategy=name, population=8, evaluations=40, seed=0)
    reporter = RecordingReporter()
    cands = run_strategy(make_strategy(SPACE, objectives, settings), synthetic_batch, 40, reporter, 8)
    assert len({c.arch_id for c in cands}) == 40
    assert any(not c.feasible for c in cands)
    front = front_of(cands, objectives)
    assert front and all(c.metrics["macs"] <= bound for c in front)
    assert reporter.of("progress")[-1][1] == 40 and len(reporter.of("candidate")) == 40


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_batched_evaluation_meets_the_budget_and_records_workers(name):
    objectives = Objectives(["accuracy", "macs"])
    settings = SearchSettings(strategy=name, population=8, evaluations=30, seed=0)
    sizes = []

    def evaluate(archs):
        sizes.append(len(archs))
        return synthetic_batch(archs)

    cands = run_strategy(make_strategy(SPACE, objectives, settings), evaluate, 30, RecordingReporter(), 8, batch=4)
    assert len({c.arch_id for c in cands}) == 30
    assert max(sizes) == 4 and sum(sizes) == 30  # batches of the pool's size, never past the budget
    assert {c.worker for c in cands} == {"worker-0", "worker-1"}


def test_random_search_finds_the_same_candidates_in_batches_as_one_by_one():
    """Where a strategy's asks do not depend on its tells, parallel evaluation changes nothing in the result."""
    objectives = Objectives(["accuracy", "macs"])
    runs = []
    for batch in (1, 3):
        settings = SearchSettings(strategy="random", evaluations=25, seed=3)
        cands = run_strategy(make_strategy(SPACE, objectives, settings), synthetic_batch, 25, RecordingReporter(), 8,
                             batch=batch)
        runs.append({c.arch_id: c.metrics for c in cands})
    assert runs[0] == runs[1]


def test_mutation_changes_an_active_choice_and_stays_in_the_space():
    rng = random.Random(0)
    for _ in range(30):
        arch = SPACE.sample(rng)
        child = mutate(SPACE, arch, rng)
        assert child != arch and SPACE.contains(child)
        before, after = SPACE.to_values(arch), SPACE.to_values(child)
        assert sum(before[k] != after[k] for k in before) >= 1


def test_objectives_minimize_error_and_cost():
    obj = Objectives(["accuracy", "params"], {"accuracy": 0.9, "params": 100})
    assert list(obj.minimized({"accuracy": 0.75, "params": 10})) == [0.25, 10]
    assert obj.feasible({"accuracy": 0.95, "params": 50})
    assert not obj.feasible({"accuracy": 0.85, "params": 50})
    assert not obj.feasible({"accuracy": 0.95, "params": 150})


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_prescreening_hands_on_one_of_many_proposals_and_meets_the_budget(name):
    from nas.search.surrogate import Screened

    objectives = Objectives(["accuracy", "macs"])
    settings = SearchSettings(strategy=name, population=8, evaluations=40, seed=0)
    cost = lambda arch: {"macs": float(count(SPACE, arch).macs), "params": float(count(SPACE, arch).params)}  # noqa: E731
    strategy = Screened(make_strategy(SPACE, objectives, settings), cost, factor=6, min_evaluations=15)
    evaluate = lambda archs: [(synthetic(a) | cost(a), "w") for a in archs]  # noqa: E731
    cands = run_strategy(strategy, evaluate, 40, RecordingReporter(), 8)
    assert len({c.arch_id for c in cands}) == 40
    assert strategy.predictor.model is not None and strategy.screened >= 5 * (40 - 15) * 0.8  # most asks screened
    if name == "nsga2":  # turned-down proposals are pruned trials, never results NSGA-II learns from
        import optuna

        states = [t.state for t in strategy.inner.study.trials]
        assert states.count(optuna.trial.TrialState.COMPLETE) >= 40  # repeats of an evaluated arch are told again
        assert states.count(optuna.trial.TrialState.PRUNED) == strategy.screened


def test_the_predictor_learns_a_smooth_accuracy_and_reports_its_held_out_quality():
    from nas.search.surrogate import held_out_quality

    rng = random.Random(0)
    archs = list({a.id: a for a in (SPACE.sample(rng) for _ in range(80))}.values())
    metrics = [synthetic(a) | {"params": float(count(SPACE, a).params)} for a in archs]
    quality = held_out_quality(SPACE, archs, metrics)
    assert quality is not None and quality["samples"] == len(archs)
    assert quality["kendall_tau"] > 0.5 and quality["rmse"] < 0.05  # accuracy grows with MACs, plus 5% noise
    assert held_out_quality(SPACE, archs[:5], metrics[:5]) is None  # too few to say


def test_prescreening_prefers_the_proposal_that_fills_the_fronts_widest_gap():
    """Two proposals are both predicted off the front's dominated region; the one in its widest gap adds more
    hypervolume and is handed on."""
    import numpy as np

    from nas.search.surrogate import Screened, improvements

    front = np.array([[0.2, 10.0], [0.5, 1.0]])  # (error, MACs): a wide gap between the two
    gap, crowd = np.array([0.3, 5.0]), np.array([0.48, 1.2])
    everything = np.vstack([front, gap, crowd])
    g_gap, g_crowd = improvements(np.stack([gap, crowd]), front, everything)
    assert g_gap > g_crowd > 0

    objectives = Objectives(["accuracy", "macs"])
    settings = SearchSettings(strategy="random", evaluations=10, seed=0)
    rng = random.Random(1)
    archs = list({a.id: a for a in (SPACE.sample(rng) for _ in range(6))}.values())[:4]
    macs = {archs[0].id: 10.0, archs[1].id: 1.0, archs[2].id: 5.0, archs[3].id: 1.2}
    accuracy = {archs[0].id: 0.8, archs[1].id: 0.5, archs[2].id: 0.7, archs[3].id: 0.52}
    screened = Screened(make_strategy(SPACE, objectives, settings), lambda a: {"macs": macs[a.id], "params": 1.0},
                        factor=2, min_evaluations=1)
    screened.resume([(a, {"accuracy": accuracy[a.id], "macs": macs[a.id]}) for a in archs[:2]])
    screened.predictor.predict = lambda props, costs: np.array([accuracy[a.id] for a in props])  # type: ignore
    assert screened._most_promising([archs[3], archs[2]]) is archs[2]
    assert screened._most_promising([archs[2], archs[3]]) is archs[2]


def test_nsga2_stores_each_finished_trial_in_one_commit_with_the_parameters_its_arch_uses(tmp_path):
    import optuna
    from sqlalchemy import event

    from nas.search.strategies import StudyRef

    ref = StudyRef(f"sqlite:///{tmp_path / 'study.db'}", "search")
    settings = SearchSettings(strategy="nsga2", population=8, evaluations=30, seed=0)
    strategy = make_strategy(SPACE, Objectives(["accuracy", "macs"]), settings, ref)
    commits = []
    event.listen(strategy.stored._storage._backend.engine, "commit", lambda _conn: commits.append(1))
    cands = run_strategy(strategy, synthetic_batch, 30, RecordingReporter(), 8, batch=3)
    told = len(strategy.study.trials)
    assert told >= 30 and len(commits) == told  # one transaction per finished trial, none per suggestion

    stored = optuna.load_study(study_name="search", storage=ref.storage)  # what optuna-dashboard opens
    assert [(t.state, t.datetime_start, t.datetime_complete) for t in stored.trials] == [
        (t.state, t.datetime_start, t.datetime_complete) for t in strategy.study.trials]  # the dashboard's durations
    by_id = {c.arch_id: c for c in cands}
    for trial in stored.trials:
        arch = SPACE.from_values({d.name: d.choices[0] for d in SPACE.dimensions()} | trial.params)
        assert arch.id == trial.user_attrs["arch_id"] and set(trial.params) == SPACE.active_dimensions(arch)
        assert trial.values == [by_id[arch.id].metrics["accuracy"], by_id[arch.id].metrics["macs"]]


def test_a_resumed_nsga2_continues_the_stored_study_in_its_generations(tmp_path):
    import optuna

    from nas.search.strategies import StudyRef

    ref = StudyRef(f"sqlite:///{tmp_path / 'study.db'}", "search")
    settings = SearchSettings(strategy="nsga2", population=8, evaluations=40, seed=0)
    objectives = Objectives(["accuracy", "macs"])
    original = make_strategy(SPACE, objectives, settings, ref)
    first = run_strategy(original, synthetic_batch, 20, RecordingReporter(), 8)
    original.ask()  # an attempt killed between ask and tell leaves nothing in the stored study

    resumed = make_strategy(SPACE, objectives, settings, ref)
    generation = "NSGAIISampler:generation"
    told = [t for t in original.study.trials if t.state.is_finished()]
    assert [(t.values, t.system_attrs[generation]) for t in resumed.study.trials] == [
        (t.values, t.system_attrs[generation]) for t in told]
    cands = run_strategy(resumed, synthetic_batch, 40, RecordingReporter(), 8, done=first)
    assert len({c.arch_id for c in cands}) == 40 and [c.arch_id for c in cands][:20] == [c.arch_id for c in first]
    stored = optuna.load_study(study_name="search", storage=ref.storage)
    complete = [t for t in stored.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= 40 and max(t.system_attrs[generation] for t in complete) >= 4  # later generations bred

import json

import pytest

from nas.pipeline import CANDIDATES, RESULT, RunDirError, run_search
from nas.progress import RecordingReporter
from nas.schemas import SearchResult
from tests.nas.conftest import tiny_config


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    reporter = RecordingReporter()
    result = run_search(tiny_config(), reporter, workdir)
    return result, workdir, reporter


def test_result_has_front_candidates_and_hypervolume(finished):
    result, workdir, _ = finished
    on_disk = SearchResult.model_validate_json((workdir / RESULT).read_text())
    assert on_disk.front == result.front
    assert len(result.candidates) == 10
    assert 1 <= len(result.front) <= 10
    assert 0 < result.hypervolume <= 1
    assert set(result.reference_point) == {"accuracy", "macs"}
    assert result.predictor and result.predictor["samples"] == 10 and result.predictor["rmse"] >= 0
    for c in result.front:
        assert {"accuracy", "params", "macs", "test_accuracy"} <= set(c.metrics)
        assert 0 <= c.metrics["test_accuracy"] <= 1
    tuned = [c for c in result.front if "finetuned_val_accuracy" in c.metrics]
    assert len(tuned) == 1
    for c in result.front:  # every front arch is saved ready to export
        assert (workdir / "models" / f"{c.arch_id}.safetensors").exists()
    assert (workdir / "supernet.safetensors").exists()


def test_events_cover_every_phase(finished):
    _, _, reporter = finished
    assert [p[0] for p in reporter.of("phase")][:4] == ["train", "search", "finetune", "finalize"]
    assert len(reporter.of("candidate")) == 10
    assert reporter.of("front")


def test_rerun_reuses_training_and_evaluations(finished):
    result, workdir, _ = finished
    lines = (workdir / CANDIDATES).read_text().splitlines()
    assert len(lines) == 10
    reporter = RecordingReporter()
    again = run_search(tiny_config(), reporter, workdir)
    assert "resumed supernet training from step 12" in reporter.of("message")
    assert [c.arch_id for c in again.candidates] == [c.arch_id for c in result.candidates]
    assert [c.metrics["accuracy"] for c in again.candidates] == [c.metrics["accuracy"] for c in result.candidates]
    assert len((workdir / CANDIDATES).read_text().splitlines()) == 10


def test_other_config_in_the_same_folder_is_refused(finished):
    _, workdir, _ = finished
    with pytest.raises(RunDirError, match="different config"):
        run_search(tiny_config(search={"evaluations": 11}), None, workdir)


def test_constraint_bounds_the_front(tmp_path):
    config = tiny_config(objectives=["accuracy", "params"], constraints={"params": 12000},
                         finalize={"enabled": False})
    result = run_search(config, None, tmp_path)
    assert result.front and all(c.metrics["params"] <= 12000 for c in result.front)
    assert all(c.feasible == (c.metrics["params"] <= 12000) for c in result.candidates)
    assert json.loads((tmp_path / RESULT).read_text())["config"]["constraints"] == {"params": 12000}


class StopAfter(RecordingReporter):
    def __init__(self, candidates: int):
        super().__init__()
        self.limit = candidates

    def should_stop(self) -> bool:
        return len(self.of("candidate")) >= self.limit


def test_a_resumed_search_continues_its_optuna_study(tmp_path):
    import optuna

    from nas.progress import Cancelled
    from nas.rundir import STUDY

    workdir = tmp_path / "run"
    with pytest.raises(Cancelled):
        run_search(tiny_config(), StopAfter(5), workdir)
    storage = f"sqlite:///{workdir / STUDY}"
    first = optuna.load_study(study_name="search", storage=storage)  # what optuna-dashboard opens
    told = [t for t in first.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(told) >= 5
    reporter = RecordingReporter()
    result = run_search(tiny_config(), reporter, workdir)
    assert len(result.candidates) == 10
    logged = [json.loads(line)["arch_id"] for line in (workdir / CANDIDATES).read_text().splitlines()]
    assert [c.arch_id for c in result.candidates][:5] == logged[:5]
    study = optuna.load_study(study_name="search", storage=storage)
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.RUNNING not in states  # an interrupted ask is marked failed, not left hanging
    assert [t.number for t in study.trials][: len(first.trials)] == [t.number for t in first.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) >= 10  # the same study, continued


def test_memory_objectives_and_constraints_drive_a_search(tmp_path):
    from search_spaces import get_space
    from search_spaces.memory import memory_metrics

    config = tiny_config(objectives=["accuracy", "peak_memory_mb"], constraints={"weights_mb": 0.02},
                         finalize={"enabled": False})
    result = run_search(config, None, tmp_path / "run")
    space = get_space("hybrid-tiny").with_input((1, 8, 8), 10)
    for c in result.candidates:
        assert c.metrics["peak_memory_mb"] == memory_metrics(space, space.parse(c.arch))["peak_memory_mb"]
        assert c.feasible == (c.metrics["weights_mb"] <= 0.02)
    assert result.front and all(c.metrics["weights_mb"] <= 0.02 for c in result.front)
    assert set(result.reference_point) == {"accuracy", "peak_memory_mb"}


def test_the_trust_report_compares_the_supernet_ranking_with_training_from_scratch(tmp_path):
    from nas.trust import TrustReport

    config = tiny_config(trust={"enabled": True, "archs": 4, "epochs": 2, "patience": 2})
    reporter = RecordingReporter()
    result = run_search(config, reporter, tmp_path / "run")
    report = TrustReport.model_validate(result.trust)
    assert len(report.points) == 4 and len({p.arch_id for p in report.points}) == 4
    by_id = {c.arch_id: c for c in result.candidates}
    front_ids = {c.arch_id for c in result.front}
    for p in report.points:  # the supernet side is the search's own figure; the other was trained here
        assert p.supernet_accuracy == by_id[p.arch_id].metrics["accuracy"]
        assert p.on_front == (p.arch_id in front_ids)
        assert 0.0 <= p.standalone_accuracy <= 1.0 and 1 <= p.epochs <= 2
    assert any(p.on_front for p in report.points) and any(not p.on_front for p in report.points)
    assert -1.0 <= report.kendall_tau <= 1.0 and -1.0 <= report.spearman_rho <= 1.0
    assert "trust" in [p[0] for p in reporter.of("phase")] and "trust_s" in result.timings


def test_trust_picks_span_the_accuracy_range():
    from nas.schemas import Candidate
    from nas.trust import pick_archs

    cands = [Candidate(arch_id=str(i), arch={}, metrics={"accuracy": i / 20}) for i in range(20)]
    front = cands[-3:]
    picked = pick_archs(cands, front, 6)
    assert [c.arch_id for c in picked] == ["17", "18", "19", "0", "8", "16"]


def test_each_finalist_keeps_the_start_inherited_or_scratch_that_validates_better(tmp_path):
    """init: auto trains every finalist from its inherited weights and from scratch; the better one is kept,
    exported and tested. A tuner that scores scratch higher for one arch and inherited for the other shows the
    choice is made per arch, on validation."""
    from nas.finalize import Trained, local_fine_tuner

    seen: dict = {}

    def favoured(arch_id: str) -> str:  # scratch for the first arch by id, inherited for any other
        return "scratch" if arch_id == min(k.split(":")[0] for k in seen) else "inherited"

    def tuner(phase, models, data, cfg, reporter, amp, seconds=None):
        seen.update(models)
        out = local_fine_tuner(phase, models, data, cfg, reporter, amp, seconds)
        return {k: Trained(t.metrics | {"val_accuracy": 0.9 if k.split(":")[1] == favoured(k.split(":")[0]) else 0.1})
                for k, t in out.items()}

    config = tiny_config(finalize={"top_k": 2, "epochs": 1, "init": "auto"}, search={"evaluations": 12})
    result = run_search(config, RecordingReporter(), tmp_path, tuner=tuner)
    tuned = {c.arch_id: c for c in result.front if "finetuned_from_scratch" in c.metrics}
    assert len(seen) == 2 * len(tuned) and {k.split(":")[1] for k in seen} == {"inherited", "scratch"}
    for arch_id, cand in tuned.items():
        assert cand.metrics["finetuned_from_scratch"] == float(favoured(arch_id) == "scratch")
        assert cand.metrics["finetuned_val_accuracy"] == 0.9
    only = run_search(tiny_config(finalize={"top_k": 1, "epochs": 1, "init": "scratch"}), RecordingReporter(),
                      tmp_path / "scratch")
    assert [c.metrics["finetuned_from_scratch"] for c in only.front if "finetuned_epochs" in c.metrics] == [1.0]


def test_a_search_runs_on_a_dataset_read_a_batch_at_a_time(tmp_path):
    import numpy as np
    import torch

    from nas.data import load_digits
    from nas.data.lazy import LazyInputs

    x, y = load_digits()
    path = tmp_path / "digits.npz"
    np.savez_compressed(path, x=x.transpose(0, 2, 3, 1), y=y)  # channels-last, as many image datasets come
    dataset = {"name": "npz", "path": str(path), "in_memory": False, "layout": "nhwc"}
    config = tiny_config(dataset=dataset, finalize={"top_k": 1, "epochs": 1, "init": "inherited"})
    result = run_search(config, RecordingReporter(), tmp_path / "run")
    assert result.front and all(0 <= c.metrics["test_accuracy"] <= 1 for c in result.front)
    held = run_search(tiny_config(dataset=dataset | {"in_memory": True}, finalize=config.finalize.model_dump()),
                      RecordingReporter(), tmp_path / "held")
    assert [c.metrics["accuracy"] for c in held.candidates] == pytest.approx(
        [c.metrics["accuracy"] for c in result.candidates], abs=0.02)  # the same search, give or take float order
    import pickle

    from nas.data import load_dataset
    from nas.schemas import DatasetConfig

    data = load_dataset(DatasetConfig(**dataset)).normalized()
    assert isinstance(data.x_val, LazyInputs)
    again = pickle.loads(pickle.dumps(data.x_val))  # what a Ray worker receives: the file, reopened
    assert torch.equal(again[:5], data.x_val[:5])

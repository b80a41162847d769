"""The time budget: allowances that flow forward, a training length that fits, a search and finalists that stop
in time, and an ETA from the engine. Clocks are faked or allowances zero, so nothing here depends on speed."""

import pytest

from nas.budget import SHARES, Budget, Deadline, auto_epochs
from nas.data import load_dataset
from nas.finalize import fine_tune, local_fine_tuner
from nas.progress import RecordingReporter, Reporter
from nas.schemas import DatasetConfig, FinalizeConfig, SearchSettings, TrainConfig
from nas.search import Objectives, make_strategy
from nas.search.loop import run_strategy
from nas.train import train_supernet
from nas.train.trainer import lr_factor
from search_spaces import HybridSupernet, get_space

SPACE = get_space("hybrid-tiny")
DATA = load_dataset(DatasetConfig(name="digits")).normalized()


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_training_length_comes_from_the_dataset_size_in_epochs():
    assert auto_epochs(1000) == 25 and auto_epochs(4000) == 50 and auto_epochs(100) == 20 and auto_epochs(10**7) == 200
    assert TrainConfig(batch_size=64).planned_steps(1258) == auto_epochs(1258) * 20  # 20 batches an epoch
    assert TrainConfig(epochs=2.5, batch_size=100).planned_steps(1000) == 25
    assert TrainConfig(steps=7).planned_steps(10**6) == 7
    with pytest.raises(ValueError, match="epochs or steps"):
        TrainConfig(steps=7, epochs=2)


def test_time_a_phase_leaves_flows_to_the_phases_after_it():
    clock = FakeClock()
    budget = Budget(10, SHARES, clock)  # 600 s: train 50%, search 10%, finetune 40%
    assert budget.start("train").left() == pytest.approx(300)
    clock.now = 100  # training ended early: 500 s left, shared by search and finetune (1 : 4)
    assert budget.start("search").left() == pytest.approx(100)
    clock.now = 120
    assert budget.start("finetune").left() == pytest.approx(480)
    clock.now = 700
    assert budget.remaining() == 0 and budget.allowance("finetune") == 0
    assert Budget(None, SHARES).allowance("train") is None and Deadline(None).left() is None


def test_a_resumed_search_counts_the_training_earlier_attempts_spent():
    clock = FakeClock()
    budget = Budget(10, SHARES, clock)
    budget.spend_earlier(200)
    assert budget.remaining() == pytest.approx(400)
    assert budget.start("train").left() == pytest.approx(200)


def test_eta_follows_the_phase_rate_and_the_budget_after_it():
    clock = FakeClock()
    budget = Budget(10, SHARES, clock)
    assert budget.eta(0, 100) is None  # no phase yet
    budget.start("train")  # deadline at 300 s
    clock.now = 50
    # 10 of 100 steps in 50 s: 450 s more at this rate, capped by the phase's deadline (250 s left); then the 300 s
    # the later phases are given
    assert budget.eta(10, 100) == pytest.approx(250 + 300)
    clock.now = 100
    assert budget.eta(80, 100) == pytest.approx(25 + 300)  # on pace to end early
    budget.start("finetune")  # the last share: its own rate only
    clock.now = 200
    assert budget.eta(2, 3) == pytest.approx(50)
    assert Budget(None, SHARES).eta(1, 2) is None


def test_training_is_shortened_to_fit_its_allowance_and_its_schedule_decays_over_the_shorter_run(tmp_path):
    reporter = RecordingReporter()
    cfg = TrainConfig(steps=500, batch_size=16, warmup_steps=2, checkpoint_every=100)
    spent = Budget(1e-9, SHARES)  # nothing left to train in
    out = train_supernet(HybridSupernet.from_spec(SPACE), DATA, cfg, tmp_path, reporter, budget=spent)
    assert out["steps"] == 11  # timed for 10 steps, then nothing was left: one more step and it ends
    assert "shortened from 500 to 11 steps" in reporter.of("message")[0]
    assert reporter.of("progress")[-1][2] == 11  # the total the progress reports follows the plan
    assert lr_factor(10, 2, 11) < 0.05  # the cosine schedule reaches its end at the new length


def test_the_search_stops_asking_once_its_deadline_has_passed():
    objectives = Objectives(["accuracy", "macs"])
    strategy = make_strategy(SPACE, objectives, SearchSettings(strategy="random", evaluations=50))
    reporter = RecordingReporter()
    found = run_strategy(strategy, lambda archs: [({"accuracy": 0.5, "macs": 1.0}, "local")] * len(archs), 50,
                         reporter, 10, deadline=Deadline(0.0))
    assert found == [] and "stopped after 0 of 50 evaluations" in reporter.of("message")[0]


def test_finalists_stop_when_their_time_is_spent_and_share_what_is_left():
    net = HybridSupernet.from_spec(SPACE).extract(SPACE.smallest())
    out = fine_tune(net, DATA, FinalizeConfig(epochs=50), Reporter(), seconds=0.0)
    assert out["epochs"] == 0 and out["val_accuracy"] == out["val_accuracy_before"]
    models = {str(i): HybridSupernet.from_spec(SPACE).extract(SPACE.smallest()) for i in range(3)}
    trained = local_fine_tuner("finetune", models, DATA, FinalizeConfig(epochs=50), Reporter(), None, seconds=0.0)
    assert [t.metrics["epochs"] for t in trained.values()] == [0, 0, 0]
    unlimited = fine_tune(net, DATA, FinalizeConfig(epochs=2, patience=5), Reporter())
    assert unlimited["epochs"] == 2


def test_the_trust_report_follows_by_default_when_the_budget_allows():
    from nas.pipeline import trust_wanted
    from nas.schemas import Candidate
    from tests.nas.conftest import tiny_config

    clock = FakeClock()
    budget = Budget(10, SHARES, clock)
    front = [Candidate(arch_id="a", arch={}, metrics={"finetuned_seconds": 30.0}),
             Candidate(arch_id="b", arch={}, metrics={"finetuned_seconds": 50.0})]
    auto = tiny_config(trust={"enabled": None, "archs": 8})  # 8 x 40 s = 320 s wanted
    reporter = RecordingReporter()
    clock.now = 200  # 400 s left
    assert trust_wanted(auto, front, budget, reporter)
    clock.now = 400  # 200 s left
    assert not trust_wanted(auto, front, budget, reporter)
    assert "no trust report: 200 s of the budget are left" in reporter.of("message")[0]
    assert trust_wanted(tiny_config(trust={"enabled": True}), front, budget, reporter)  # asked for: always
    assert not trust_wanted(auto, [], budget, reporter)  # no finalist trained: nothing to estimate from
    assert not trust_wanted(tiny_config(trust={"enabled": None}, budget={"minutes": None}), front,
                            Budget(None, SHARES), reporter)  # no budget: only when asked for

"""The start race as Ray Tune's scheduler (`_StartRace`): a finalist's start that lags its other start at
`finalize.halving_epoch` is stopped by Tune, and comes back as a start not to keep (no weights, marked halted)."""

from __future__ import annotations

import logging
import os
import pickle
from types import SimpleNamespace

import pytest

from nas.progress import RecordingReporter
from nas.schemas import FinalizeConfig
from nas.storage import ArtifactStore
from tests.nas.test_start_race import DATA, learner, mute
from workers.tune_finalize import _REPORTERS, _Progress, _StartRace, tune_fine_tuner


def _trial(key: str) -> SimpleNamespace:
    return SimpleNamespace(config={"arch_id": key}, trial_id=key)


def test_the_scheduler_stops_a_lagging_start_and_lets_every_final_report_through():
    scheduler = _StartRace(2)
    epoch = {"val_accuracy": 0.8}
    assert scheduler.on_trial_result(None, _trial("a:inherited"), epoch | {"epoch": 2, "best_val_accuracy": 0.9}) \
        == scheduler.CONTINUE
    assert scheduler.on_trial_result(None, _trial("a:scratch"), epoch | {"epoch": 1, "best_val_accuracy": 0.1}) \
        == scheduler.CONTINUE
    assert scheduler.on_trial_result(None, _trial("a:scratch"), epoch | {"epoch": 2, "best_val_accuracy": 0.5}) \
        == scheduler.STOP
    final = {"val_accuracy_before": 0.1, "val_accuracy": 0.2, "epochs": 2.0, "seconds": 1.0, "final": 1}
    assert scheduler.on_trial_result(None, _trial("b:scratch"), final) == scheduler.CONTINUE
    assert pickle.loads(pickle.dumps(scheduler)).race.halted == {"a:scratch": 2}  # Tune pickles its scheduler


class _Stopping(RecordingReporter):
    def should_stop(self) -> bool:
        return True


def test_a_trial_cut_short_by_a_cancel_is_not_reported_as_a_lagging_start():
    progress = _Progress("phase-key", "finetune", total=2)
    trial = _trial("a:scratch")
    trial.last_result = {"epoch": 3, "val_accuracy": 0.4, "best_val_accuracy": 0.5}  # no final report
    for reporter, said in ((_Stopping(), "stopped with the search"), (RecordingReporter(), "stopped after epoch 3")):
        _REPORTERS["phase-key"] = reporter
        try:
            progress.on_trial_complete(0, [], trial)
        finally:
            _REPORTERS.pop("phase-key")
        (message,) = reporter.of("message")
        assert said in message, message


@pytest.fixture(scope="module")
def one_cpu_ray():
    """A local Ray of one CPU: a phase's trials then run one at a time, in the order of their models."""
    import ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level=logging.WARNING)
    yield
    ray.shutdown()


def test_tune_stops_the_lagging_start_and_hands_it_back_as_one_not_to_keep(one_cpu_ray, tmp_path):
    cfg = FinalizeConfig(epochs=3, patience=10, halving_epoch=2)
    reporter = RecordingReporter()
    fine_tune_all = tune_fine_tuner(ArtifactStore(None, tmp_path), tmp_path / "tune")
    trained = fine_tune_all("finetune", {"a:inherited": learner(), "a:scratch": mute()}, DATA, cfg, reporter, None)
    leader, lagging = trained["a:inherited"], trained["a:scratch"]
    assert leader.metrics["epochs"] == 3 and "halted" not in leader.metrics
    assert lagging.metrics["epochs"] == 2 and lagging.metrics["halted"] == 1.0
    assert lagging.metrics["val_accuracy"] < leader.metrics["val_accuracy"]
    assert leader.trial_id and lagging.trial_id and leader.trial_id != lagging.trial_id
    assert any(f"Tune trial {lagging.trial_id}: start scratch of finalist a stopped after epoch 2" in text
               for text in reporter.of("message"))
    assert [step for _name, step, _total, _metrics in reporter.of("progress")] == [1, 2]

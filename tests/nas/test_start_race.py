"""A finalist's two starts (`finalize.init: auto`) race: at `finalize.halving_epoch`, a start whose best validation
accuracy is behind what its other start had by then stops there (successive halving), in this process and
as Ray Tune trials (tests/workers/test_tune_race.py). Each start's training depends on its seed alone."""

import math

import torch
from torch import nn

from nas.data import load_dataset
from nas.finalize import StartRace, fine_tune, local_fine_tuner
from nas.progress import RecordingReporter, Reporter
from nas.schemas import DatasetConfig, FinalizeConfig

DATA = load_dataset(DatasetConfig(name="digits")).normalized()
FEATURES = math.prod(DATA.input_shape)


def learner() -> nn.Module:
    """Logistic regression: well above chance after an epoch."""
    return nn.Sequential(nn.Flatten(), nn.Linear(FEATURES, DATA.num_classes))


def mute() -> nn.Module:
    """Outputs zeros whatever its weights (no gradient reaches them): it never leaves chance."""
    return nn.Sequential(nn.Flatten(), nn.Linear(FEATURES, DATA.num_classes), nn.Threshold(1e9, 0.0))


def test_a_start_behind_its_other_start_at_the_epoch_stops_there():
    race = StartRace(3)
    assert not race.stops("a:inherited", 2, 0.9)  # not the epoch
    assert not race.stops("a:inherited", 3, 0.9)  # the first there goes on
    assert not race.stops("b:scratch", 3, 0.1)  # another arch's start is no rival
    assert race.stops("a:scratch", 3, 0.5)  # behind its other start by then
    assert not race.stops("b:inherited", 3, 0.1)  # level: goes on
    assert race.halted == {"a:scratch": 3}


def test_a_first_arrival_is_never_stopped_and_archs_without_a_second_start_never_race():
    race = StartRace(2)
    assert not race.stops("a:scratch", 2, 0.2)
    assert not race.stops("a:inherited", 2, 0.9)  # ahead; the first, already past the epoch, trains on too
    assert not race.stops("x1", 2, 0.9) and not race.stops("x2", 2, 0.1)  # the trust report's archs
    off = StartRace(0)
    assert not off.stops("a:inherited", 1, 0.9) and not off.stops("a:scratch", 1, 0.1)
    assert race.halted == {} and off.halted == {}


def test_in_process_the_lagging_start_stops_at_the_epoch_and_the_leader_trains_to_the_end():
    cfg = FinalizeConfig(epochs=4, patience=10, halving_epoch=2)
    reporter = RecordingReporter()
    trained = local_fine_tuner("finetune", {"a:inherited": learner(), "a:scratch": mute()}, DATA, cfg, reporter,
                               amp=None)
    assert trained["a:inherited"].metrics["epochs"] == 4 and "halted" not in trained["a:inherited"].metrics
    assert trained["a:scratch"].metrics["epochs"] == 2 and trained["a:scratch"].metrics["halted"] == 1.0
    assert trained["a:scratch"].metrics["val_accuracy"] < trained["a:inherited"].metrics["val_accuracy"]
    assert any("start scratch of finalist a stopped after epoch 2" in text for text in reporter.of("message"))


def test_in_process_a_lagging_start_that_trains_first_and_halving_off_train_both_to_the_end():
    for order, halving in ((("a:scratch", "a:inherited"), 2), (("a:inherited", "a:scratch"), 0)):
        models = {key: mute() if key.endswith("scratch") else learner() for key in order}
        cfg = FinalizeConfig(epochs=3, patience=10, halving_epoch=halving)
        trained = local_fine_tuner("finetune", models, DATA, cfg, RecordingReporter(), amp=None)
        assert [trained[key].metrics["epochs"] for key in order] == [3, 3], (order, halving)
        assert not any("halted" in t.metrics for t in trained.values())


def dropout_learner() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(FEATURES, 32), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(32, DATA.num_classes))


def test_a_start_trains_the_same_whatever_trained_before_it_in_the_process():
    cfg = FinalizeConfig(epochs=2, patience=10)
    first, second = dropout_learner(), dropout_learner()
    a = fine_tune(first, DATA, cfg, Reporter(), seed=3)
    torch.rand(1000)  # what another training would have drawn from the process's random state
    b = fine_tune(second, DATA, cfg, Reporter(), seed=3)
    assert a["val_accuracy"] == b["val_accuracy"]
    assert all(torch.equal(x, y) for x, y in zip(first.state_dict().values(), second.state_dict().values(),
                                                 strict=True))
    model = dropout_learner()
    state = torch.get_rng_state()
    fine_tune(model, DATA, cfg, Reporter(), seed=4)
    assert torch.equal(torch.get_rng_state(), state)  # and the process's own draws go on where they were

import torch

from nas.data import load_dataset
from nas.progress import Cancelled, RecordingReporter, Reporter
from nas.schemas import DatasetConfig, TrainConfig
from nas.train import CHECKPOINT, load_checkpoint, train_supernet
from search_spaces import HybridSupernet, get_space

SPACE = get_space("hybrid-tiny")
DATA = load_dataset(DatasetConfig(name="digits")).normalized()  # augmented batches (the default)
PLAIN = load_dataset(DatasetConfig(name="digits", augment={"enabled": False})).normalized()
CFG = TrainConfig(steps=6, batch_size=16, checkpoint_every=2, warmup_steps=1)


class StopAt(Reporter):
    def __init__(self, step: int):
        self.stop_at, self.step = step, 0

    def progress(self, name, step, total, metrics=None):
        self.step = step

    def should_stop(self):
        return self.step >= self.stop_at


def fresh(seed: int) -> HybridSupernet:
    torch.manual_seed(seed)
    return HybridSupernet.from_spec(SPACE)


def test_resumed_training_continues_the_same_run(tmp_path):
    straight = fresh(0)
    train_supernet(straight, DATA, CFG, tmp_path / "a")

    interrupted = fresh(0)
    try:
        train_supernet(interrupted, DATA, CFG, tmp_path / "b", StopAt(3))
        raise AssertionError("training did not stop")
    except Cancelled:
        pass
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT)["step"] == 3

    resumed = fresh(123)  # different init: everything must come from the checkpoint
    reporter = RecordingReporter()
    train_supernet(resumed, DATA, CFG, tmp_path / "b", reporter)
    assert reporter.of("message") == ["resumed supernet training from step 3"]
    assert [p[1] for p in reporter.of("progress")] == [3, 4, 5, 6]  # where it stands, then the new steps
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


def test_training_reduces_the_loss(tmp_path):
    net = fresh(0)
    reporter = RecordingReporter()
    train_supernet(net, PLAIN, TrainConfig(steps=40, batch_size=64, warmup_steps=2), tmp_path, reporter)
    losses = [p[3]["loss"] for p in reporter.of("progress")]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert all(p[3]["samples_per_s"] > 0 for p in reporter.of("progress"))


def test_checkpoint_holds_tensors_and_numbers_only(tmp_path):
    train_supernet(fresh(0), DATA, TrainConfig(steps=2, batch_size=8, checkpoint_every=1), tmp_path)
    # weights_only=True refuses anything but tensors and plain containers
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["step"] == 2
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind

"""tune_fine_tuner: the finalists of a service search, each fine-tuned as a Ray Tune trial.

One trial per arch, one CPU (or GPU) each, so finalists train side by side on whatever nodes the cluster
has. A trial reports its validation accuracy after every epoch (early stopping inside `fine_tune` ends it
when validation stops improving) and leaves the best weights as its Tune checkpoint, which this search
then loads into its own copy of the model. Trials are stored under the run folder's `tune/` directory;
a cancel request stops every trial.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune
from safetensors.torch import load_file
from torch import nn

from nas.data import DataSplits
from nas.files import save_tensors
from nas.finalize import Trained, fine_tune
from nas.progress import Cancelled, Reporter
from nas.schemas import FinalizeConfig
from nas.storage import ArtifactStore

WEIGHTS = "model.safetensors"

# the search's own log is enough: no progress tables from Tune in it
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def _trial(config: dict[str, Any], models: dict[str, nn.Module], data: DataSplits, cfg: FinalizeConfig,
           amp: torch.dtype | None, seconds: float | None) -> None:
    """One Tune trial: train the model named in `config` (within `seconds`), reporting each epoch, then the best
    weights."""
    torch.set_num_threads(1)
    model = models[config["arch_id"]]
    metrics = fine_tune(model, data, cfg, Reporter(), amp=amp, seconds=seconds,
                        on_epoch=lambda epoch, val: tune.report({"epoch": epoch, "val_accuracy": val}))
    with tempfile.TemporaryDirectory() as folder:
        save_tensors(Path(folder) / WEIGHTS, model)
        tune.report(metrics | {"final": 1}, checkpoint=tune.Checkpoint.from_directory(folder))


# Tune pickles its run config (stopper and callbacks included), and a reporter holds a database and threads:
# they reach it through this table instead, by the search's job id
_REPORTERS: dict[str, Reporter] = {}


class _Cancel(tune.Stopper):
    """Stops every trial once the search is cancelled (or its attempt lost)."""

    def __init__(self, key: str):
        self.key = key

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return _REPORTERS[self.key].should_stop()


class _Progress(tune.Callback):
    """Each finished trial, as it finishes: the phase's progress and a message naming the trial."""

    def __init__(self, key: str, phase: str, total: int):
        self.key, self.phase, self.total, self.done = key, phase, total, 0

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.done += 1
        accuracy = float(trial.last_result.get("val_accuracy", 0.0))
        reporter = _REPORTERS[self.key]
        reporter.progress(self.phase, self.done, self.total, {"val_accuracy": accuracy})
        reporter.message(f"Tune trial {trial.trial_id} ({self.phase}, arch {trial.config['arch_id'][:12]}) finished: "
                         f"validation accuracy {accuracy:.4f}")


def _trial_folder(trial: Any) -> str:
    """`<arch id prefix>[-<init>]-<trial id>`: the model key is an arch id, or `<arch id>:<init>`."""
    arch_id, _, init = trial.config["arch_id"].partition(":")
    return "-".join(part for part in (arch_id[:12], init, trial.trial_id) if part)


def _storage(store: ArtifactStore, folder: Path) -> dict[str, Any]:
    """Where Tune keeps trials and checkpoints: `folder`, or its place in a remote store (every node reaches it)."""
    if not store.remote:
        return {"storage_path": str(folder.resolve())}
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return {"storage_path": store.remote_path(folder), "storage_filesystem": PyFileSystem(FSSpecHandler(store.fs))}


def trial_seconds(seconds: float | None, trials: int, cuda: bool) -> float | None:
    """Each trial's part of the phase's `seconds`: trials run side by side as far as the cluster's free CPUs (or
    GPUs) allow, in waves beyond that, so each gets the phase's time divided by the number of waves."""
    if seconds is None:
        return None
    free = ray.available_resources().get("GPU" if cuda else "CPU", 0.0)
    at_once = max(1, min(trials, int(free)))
    return seconds / math.ceil(trials / at_once)


def tune_fine_tuner(store: ArtifactStore, folder: Path, cuda: bool = False):
    """A FineTuner (nas.finalize) whose trials Ray Tune runs, stored under `folder` of `store`."""

    def fine_tune_all(phase: str, models: dict[str, nn.Module], data: DataSplits, cfg: FinalizeConfig,
                      reporter: Reporter, amp: torch.dtype | None, seconds: float | None = None) -> dict[str, Trained]:
        each = trial_seconds(seconds, len(models), cuda)
        trainable = tune.with_resources(tune.with_parameters(_trial, models=models, data=data, cfg=cfg, amp=amp,
                                                             seconds=each),
                                        {"cpu": 1, "gpu": 1 if cuda else 0})
        key = str((folder / phase).resolve())
        _REPORTERS[key] = reporter
        tuner = tune.Tuner(
            trainable,
            param_space={"arch_id": tune.grid_search(list(models))},
            tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", reuse_actors=False,
                                        trial_dirname_creator=_trial_folder),
            run_config=tune.RunConfig(name=phase, **_storage(store, folder), verbose=0,
                                      stop=_Cancel(key), callbacks=[_Progress(key, phase, len(models))],
                                      failure_config=tune.FailureConfig(max_failures=1)),
        )
        try:
            grid = tuner.fit()
        finally:
            _REPORTERS.pop(key, None)
        if reporter.should_stop():
            raise Cancelled("cancelled during fine-tuning")
        out: dict[str, Trained] = {}
        for i in range(len(grid)):
            result = grid[i]
            if result.error is not None:
                raise RuntimeError(f"fine-tuning trial failed: {result.error}")
            assert result.config is not None and result.metrics is not None and result.checkpoint is not None
            arch_id = result.config["arch_id"]
            with result.checkpoint.as_directory() as checkpoint:
                models[arch_id].load_state_dict(load_file(str(Path(checkpoint) / WEIGHTS)))
            metrics = {k: float(result.metrics[k]) for k in ("val_accuracy_before", "val_accuracy", "epochs", "seconds")}
            out[arch_id] = Trained(metrics, trial_id=str(result.metrics["trial_id"]))
        return out

    return fine_tune_all

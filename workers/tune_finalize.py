"""tune_fine_tuner: the finalists of a service search, each fine-tuned as a Ray Tune trial.

One trial per arch, so finalists train side by side on whatever nodes the cluster has: one GPU each on GPUs;
on CPUs, as many CPUs (and torch threads) each as still lets them all run at once (one each when they cannot).
A trial reports its validation accuracy after every epoch (early stopping inside `fine_tune` ends it
when validation stops improving) and leaves the best weights as its Tune checkpoint, which this search
then loads into its own copy of the model. Trials are stored under the run folder's `tune/` directory;
a cancel request stops every trial.

Tune's scheduler stops trials early only between the two starts of one finalist (`init: auto`, `StartRace`):
ASHA across archs would cut short the slow learners whose full accuracy the front (beside their latency) and the
trust report (its rank correlation) are there to measure.

Tune's driver runs in the search's own task, which spends the phase waiting in Tune's `ray.wait` on the trials:
Ray lends a blocked task's CPUs to others, so the search's own CPU trains a finalist too (on 2 cores: two trials
at once). No driver task or channel actor of its own: each was a process more to start and to keep beside the
trials (a warm worker held idle through the whole search for the driver, a new process for the channel).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune
from ray.tune.schedulers import FIFOScheduler
from safetensors.torch import load_file
from torch import nn

from nas.data import DataSplits
from nas.files import save_tensors
from nas.finalize import StartRace, Trained, fine_tune, halted_message, start_seed
from nas.progress import Cancelled, Reporter
from nas.schemas import FinalizeConfig
from nas.storage import ArtifactStore

WEIGHTS = "model.safetensors"
FINAL = "final"  # the key of a trial's last report, the one with its best weights

# the search's own log is enough: no progress tables from Tune in it
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def _trial(config: dict[str, Any], models: dict[str, nn.Module], data: DataSplits, cfg: FinalizeConfig,
           amp: torch.dtype | None, seconds: float | None, threads: int) -> None:
    """One Tune trial: train the model named in `config` (within `seconds`, on `threads` torch threads), reporting
    each epoch, then the best weights. Seeded as `local_fine_tuner` seeds the same model (`start_seed`)."""
    torch.set_num_threads(threads)
    key = config["arch_id"]
    model, seed = models[key], start_seed(models, key)

    def report_epoch(epoch: int, val: float, best: float) -> None:  # `_StartRace` stops the trial if it lags
        tune.report({"epoch": epoch, "val_accuracy": val, "best_val_accuracy": best})

    metrics = fine_tune(model, data, cfg, Reporter(), seed=seed, amp=amp, seconds=seconds, on_epoch=report_epoch)
    with tempfile.TemporaryDirectory() as folder:
        save_tensors(Path(folder) / WEIGHTS, model)
        tune.report(metrics | {FINAL: 1}, checkpoint=tune.Checkpoint.from_directory(folder))


# Tune pickles its run config (the stopper and callbacks with it) into the experiment's state, and a reporter holds
# a database and threads: they reach the search's reporter through this table, by the phase's storage path
_REPORTERS: dict[str, Reporter] = {}


class _Cancel(tune.Stopper):
    """Stops every trial once the search asks (cancelled, or its attempt lost: flags the reporter holds)."""

    def __init__(self, key: str):
        self.key = key

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return _REPORTERS[self.key].should_stop()


class _StartRace(FIFOScheduler):
    """`StartRace` over the trials' epoch reports: a finalist's start that lags its other start stops there."""

    def __init__(self, epoch: int):
        super().__init__()
        self.race = StartRace(epoch)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if FINAL in result or not self.race.stops(trial.config["arch_id"], int(result["epoch"]),
                                                     float(result["best_val_accuracy"])):
            return self.CONTINUE
        return self.STOP


def _halted(result: dict) -> bool:
    """Whether a trial ended without its final report: `_StartRace` stopped it, or a cancel did (callers check the
    search's stop flag first; a failed trial has an error)."""
    return FINAL not in result


class _Progress(tune.Callback):
    """Each finished trial, as it finishes: the phase's progress and a message naming the trial."""

    def __init__(self, key: str, phase: str, total: int):
        self.key, self.phase, self.total, self.done = key, phase, total, 0

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.done += 1
        result, reporter = trial.last_result, _REPORTERS[self.key]
        label = f"Tune trial {trial.trial_id} ({self.phase}, arch {trial.config['arch_id'][:12]})"
        if reporter.should_stop():  # every trial is being stopped with the search
            reporter.message(f"{label} stopped with the search")
            return
        if _halted(result):
            accuracy = float(result.get("best_val_accuracy", 0.0))
            reporter.message(f"Tune trial {trial.trial_id}: "
                             + halted_message(trial.config["arch_id"], int(result.get("epoch", 0)), accuracy))
        else:
            accuracy = float(result.get("val_accuracy", 0.0))
            reporter.message(f"{label} finished: validation accuracy {accuracy:.4f}")
        reporter.progress(self.phase, self.done, self.total, {"val_accuracy": accuracy})


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


@dataclass(frozen=True)
class TrialSizing:
    """How a phase's trials share the cluster: CPUs (and torch threads) per trial, and how many run at once."""

    cpus: int
    at_once: int

    def seconds_each(self, seconds: float | None, trials: int) -> float | None:
        """Each trial's part of the phase's `seconds`: trials beyond `at_once` run in later waves, so each gets
        the phase's time divided by the number of waves."""
        return None if seconds is None else seconds / math.ceil(trials / self.at_once)


def size_trials(trials: int, free: float, nodes: list[float]) -> TrialSizing:
    """Trials of one CPU each, or more where every trial still runs at once: the most CPUs per trial that `free`
    CPUs cover and that the nodes (their CPU counts; a trial runs on one node) hold `trials` times. With fewer CPUs
    than trials each gets one: a second thread trained a supernet only 1.23x as fast here (a throwaway script,
    4 alternating rounds of 30 steps), so a wave more costs more than threads gain. On a large node a few
    finalists no longer train on one core each beside idle ones."""
    def fitting(cpus: int) -> int:
        return min(int(free // cpus), sum(int(node // cpus) for node in nodes))

    best = max((c for c in range(1, int(max(nodes, default=1)) + 1) if fitting(c) >= trials), default=1)
    return TrialSizing(best, max(1, min(trials, fitting(best))))


def _free_for_trials(cuda: bool) -> float:
    """The cluster's free CPUs (GPUs) once this search yields its own CPUs while it waits on the trials (Ray
    hands a task's CPUs back while it is blocked in `ray.wait`, where Tune's driver spends the phase; GPUs stay
    held)."""
    kind = "GPU" if cuda else "CPU"
    free = ray.available_resources().get(kind, 0.0)
    if cuda or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return free  # GPUs are not lent; a driver process (not a Ray task) holds nothing
    return free + ray.get_runtime_context().get_assigned_resources().get(kind, 0.0)


def _trial_sizing(trials: int, cuda: bool) -> TrialSizing:
    """Trials on GPUs take one GPU each (and one CPU); on CPUs, `size_trials` over the live nodes."""
    free = _free_for_trials(cuda)
    if cuda:
        return TrialSizing(1, max(1, min(trials, int(free))))
    return size_trials(trials, free, [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")])


def _fit(phase: str, models: dict[str, nn.Module], data: DataSplits, cfg: FinalizeConfig, amp: torch.dtype | None,
         seconds: float | None, cuda: bool, sizing: TrialSizing, storage: dict[str, Any], key: str) -> tune.ResultGrid:
    """Run one Tune experiment: a trial per model, of `sizing.cpus` CPUs (or a GPU) each, `seconds` each."""
    trainable = tune.with_resources(tune.with_parameters(_trial, models=models, data=data, cfg=cfg, amp=amp,
                                                         seconds=sizing.seconds_each(seconds, len(models)),
                                                         threads=sizing.cpus),
                                    {"cpu": sizing.cpus, "gpu": 1 if cuda else 0})
    # a trial after the first in its slot reuses that slot's actor: starting one took 7-9 s on 2 cores
    tuner = tune.Tuner(
        trainable,
        param_space={"arch_id": tune.grid_search(list(models))},
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", reuse_actors=True,
                                    scheduler=_StartRace(cfg.halving_epoch), trial_dirname_creator=_trial_folder),
        run_config=tune.RunConfig(name=phase, **storage, verbose=0, stop=_Cancel(key),
                                  callbacks=[_Progress(key, phase, len(models))],
                                  failure_config=tune.FailureConfig(max_failures=1)),
    )
    return tuner.fit()


def _load_results(grid: tune.ResultGrid, models: dict[str, nn.Module]) -> dict[str, Trained]:
    """Each trial's best weights loaded into its model; its metrics and trial id. A failed trial fails the phase; a
    start that `_StartRace` stopped keeps its weights untouched, as it will not be kept."""
    out: dict[str, Trained] = {}
    for i in range(len(grid)):
        result = grid[i]
        if result.error is not None:
            raise RuntimeError(f"fine-tuning trial failed: {result.error}")
        assert result.config is not None and result.metrics is not None
        key = result.config["arch_id"]
        if _halted(result.metrics):
            out[key] = Trained({"val_accuracy": float(result.metrics["best_val_accuracy"]),
                                "epochs": float(result.metrics["epoch"]), "halted": 1.0},
                               trial_id=str(result.metrics["trial_id"]))
            continue
        assert result.checkpoint is not None
        with result.checkpoint.as_directory() as checkpoint:
            models[key].load_state_dict(load_file(str(Path(checkpoint) / WEIGHTS)))
        metrics = {k: float(result.metrics[k]) for k in ("val_accuracy_before", "val_accuracy", "epochs", "seconds")}
        out[key] = Trained(metrics, trial_id=str(result.metrics["trial_id"]))
    return out


def tune_fine_tuner(store: ArtifactStore, folder: Path, cuda: bool = False):
    """A FineTuner (nas.finalize) whose trials Ray Tune runs, stored under `folder` of `store`."""

    def fine_tune_all(phase: str, models: dict[str, nn.Module], data: DataSplits, cfg: FinalizeConfig,
                      reporter: Reporter, amp: torch.dtype | None, seconds: float | None = None) -> dict[str, Trained]:
        key = str((folder / phase).resolve())
        _REPORTERS[key] = reporter
        try:
            grid = _fit(phase, models, data, cfg, amp, seconds, cuda, _trial_sizing(len(models), cuda),
                        _storage(store, folder), key)
        finally:
            _REPORTERS.pop(key, None)
        if reporter.should_stop():
            raise Cancelled("cancelled during fine-tuning")
        return _load_results(grid, models)

    return fine_tune_all

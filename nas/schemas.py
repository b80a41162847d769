"""Pydantic models shared by the library, the CLI, the API, the workers and the database.

`SearchConfig` is what a user submits (YAML for the CLI, JSON for the REST API). The smallest
valid config names a space and a dataset; everything else has a default.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nas.budget import auto_epochs
from nas.latency.allocator import Regime
from nas.latency.backends import BACKENDS
from nas.search.strategies import STRATEGIES
from search_spaces.errors import UserError, field_messages, read_yaml

ObjectiveName = Literal["accuracy", "latency_ms", "params", "macs", "peak_memory_mb", "weights_mb"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AugmentConfig(_Config):
    """Training-time augmentation, drawn per example; validation, test and BN recalibration see the data as is."""

    enabled: bool = Field(True, description="augment training batches (the settings below; 0 turns one off)")
    shift: float = Field(0.125, ge=0, le=0.5, description="images: random translation by up to this share of the "
                                                          "size (zero-padded crop)")
    flip: bool = Field(False, description="images: random horizontal flip (off by default: it changes digits and text)")
    seq_shift: float = Field(0.0, ge=0, le=0.5, description="sequences: random shift by up to this share of the length "
                                                           "(off by default: positions can carry the class)")
    scale: float = Field(0.1, ge=0, lt=1, description="sequences: amplitude scaled by a factor in [1 - s, 1 + s]")
    noise: float = Field(0.05, ge=0, le=10, description="sequences: Gaussian noise of this std (normalized units)")


class DatasetConfig(_Config):
    name: Literal["digits", "npz", "folder"] = Field(description="built-in 'digits', an .npz file or an image folder")
    path: str | None = Field(None, description="the .npz file or the image folder (one sub-folder per class)")
    kind: Literal["image", "sequence"] | None = Field(
        None, description="how to read 3-D arrays (N, A, B); default: images if A == B, else sequences (N, C, L)"
    )
    image_size: int | None = Field(None, ge=2, description="folder images are resized to this square size")
    val_fraction: float = Field(0.15, gt=0, lt=0.5, description="share of the training data held out for validation")
    test_fraction: float = Field(0.15, gt=0, lt=0.5, description="share held out for testing when no test split is given")
    layout: Literal["auto", "nchw", "nhwc"] = Field(
        "auto", description="4-D npz images: channels first (nchw) or last (nhwc); auto takes a last axis of 1, 3 or 4 "
                            "after two equal ones as channels")
    in_memory: bool | None = Field(None, description=(
        "hold the inputs in memory (fast); false reads them a batch at a time (a memory-mapped npz, folder images "
        "decoded when read), so memory is bounded by the batch; default: in memory up to 1 GiB of float32 inputs"))
    augment: AugmentConfig = Field(default_factory=lambda: AugmentConfig(),
                                   description="training-time augmentation (supernet and finalists)")
    seed: int = 0

    @model_validator(mode="after")
    def _path_needed(self) -> DatasetConfig:
        if self.name in ("npz", "folder") and not self.path:
            raise ValueError(f"dataset '{self.name}' needs a 'path'")
        return self


class TrainConfig(_Config):
    epochs: float | None = Field(None, gt=0, le=100_000, description=(
        "supernet training length in epochs; default from the dataset's size (25 at 1,000 training examples, "
        "growing with its square root, 20 to 200), shortened to fit the budget"))
    steps: int | None = Field(None, ge=1, le=10_000_000, description="supernet optimisation steps (instead of epochs)")
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_steps: int = Field(20, ge=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    random_subnets: int = Field(2, ge=0, le=256, description="random subnets per step besides the largest and smallest")
    distill: bool = Field(True, description="in-place distillation from the largest subnet's soft labels")
    sandwich: Literal["families", "extremes"] = Field(
        "extremes", description="families: each step trains one block family's largest and smallest subnets, in "
                                "turn, distilling from the family-largest subnet with the lowest loss so far; "
                                "extremes: the space's largest and smallest subnets every step")
    checkpoint_every: int = Field(50, ge=1)
    grad_clip: float | None = Field(5.0, gt=0)
    seed: int = 0

    @model_validator(mode="after")
    def _one_length(self) -> TrainConfig:
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give epochs or steps, not both")
        return self

    def planned_steps(self, n_train: int) -> int:
        """The training length before any budget: `steps`, or `epochs` (default from the dataset's size) of
        batches."""
        if self.steps is not None:
            return self.steps
        epochs = self.epochs if self.epochs is not None else auto_epochs(n_train)
        return max(1, math.ceil(epochs * math.ceil(n_train / self.batch_size)))


class SearchSettings(_Config):
    strategy: str = Field("nsga2", description=f"a registered search strategy: {', '.join(STRATEGIES.names())}")
    evaluations: int = Field(150, ge=1, le=1_000_000, description="distinct architectures evaluated")
    population: int = Field(24, ge=2, le=100_000, description="population size (NSGA-II, evolution)")
    sample_size: int = Field(8, ge=2, description="tournament size of regularized evolution")
    bn_batches: int = Field(4, ge=1, description="training batches used to recalibrate BN statistics")
    screen_factor: int = Field(1, ge=1, le=100, description=(
        "accuracy-predictor pre-screening: each evaluation takes the most promising of this many proposals "
        "(1: off)"))
    screen_after: int = Field(30, ge=10, description="evaluations before the predictor starts screening")
    workers: int | None = Field(None, ge=1, le=1024, description=(
        "evaluation workers (Ray actors, each holding the supernet) for a search run by the service; default: the "
        "Ray cluster's free CPUs (1 on a 2-core machine: in the search's own process); `nas search` evaluates "
        "in-process"))
    seed: int = 0

    _strategy = field_validator("strategy")(classmethod(lambda cls, v: STRATEGIES.check(v)))


class FinalizeConfig(_Config):
    enabled: bool = Field(True, description="train the top-k front archs (by accuracy) to their best as stand-alone "
                                            "models")
    top_k: int = Field(3, ge=1, le=1_000)
    init: Literal["auto", "inherited", "scratch"] = Field(
        "auto", description="start from the supernet's weights (inherited), re-initialised (scratch), or both, keeping "
                            "whichever validates better (auto)")
    epochs: int = Field(100, ge=1, le=10_000, description="at most this many epochs per finalist (and the budget)")
    patience: int = Field(8, ge=1, le=10_000, description="stop a finalist after this many epochs without a better "
                                                          "validation accuracy (its best epoch's weights are kept); "
                                                          "the learning rate drops after a third of them")
    halving_epoch: int = Field(
        8, ge=0, le=10_000, description="with init auto, a finalist's start whose best validation accuracy after this "
                                        "many epochs is below what its other start had by then stops there (successive "
                                        "halving between the two starts); 0 trains both to the end")
    lr: float = Field(2e-3, gt=0)
    batch_size: int = Field(64, ge=1)


class TrustConfig(_Config):
    """The trust report (nas/trust.py): archs of the search trained from scratch, their ranking compared."""

    enabled: bool | None = Field(None, description=(
        "after the search, train `archs` candidates from scratch and report Kendall tau / Spearman rho against the "
        "supernet's ranking; default: when the budget allows (the time left after the finalists is at least `archs` "
        "times what one finalist's training took)"))
    archs: int = Field(8, ge=3, le=200, description="front and off-front candidates, spread over the accuracy range")
    epochs: int = Field(20, ge=1, le=10_000, description="at most this many epochs each (early stopping on validation)")
    patience: int = Field(4, ge=1, le=10_000)
    lr: float = Field(2e-3, gt=0)
    batch_size: int = Field(64, ge=1)


class ComputeConfig(_Config):
    """Where training and evaluation run (see nas/device.py)."""

    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
                        description="auto (a CUDA device if there is one, else the CPU), cpu, cuda or cuda:N; over "
                                    "the service, cuda also asks Ray for a GPU")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="training autocast: auto is bf16 on a GPU that has it (else fp16), fp32 on a CPU")
    cpus: float = Field(1.0, gt=0, le=1024, description="CPUs a service search asks Ray for")
    gpus: float | None = Field(None, ge=0, le=64, description="GPUs a service search asks Ray for; default 1 when "
                                                             "device is cuda, else 0 (a job the cluster cannot give them "
                                                             "to fails at once, saying so)")


class BudgetConfig(_Config):
    """The whole search's wall time, shared by its phases (nas/budget.py)."""

    minutes: float | None = Field(15.0, gt=0, le=100_000, description=(
        "wall time of the whole search: supernet training plans its length to fit its share, the search and the "
        "finalists stop when theirs is spent (null: no time limit)"))


class LatencySettings(_Config):
    """How a search uses its latency table (`hardware`)."""

    measure_missing: bool = Field(True, description="measure the layers of the (re-targeted) space that the table "
                                                    "lacks before the search, on the profile's machine")
    calibrate: bool = Field(True, description="scale predictions to the host's speed now (re-measures the table's "
                                              "reference network; only on the profile's machine)")
    remeasure_front: bool = Field(True, description="after the search, measure the front archs end to end, record "
                                                    "measured_latency_ms and fold the residuals into the table")


def _default_objectives() -> list[ObjectiveName]:
    return ["accuracy", "macs"]


class SearchConfig(_Config):
    space: str = Field("hybrid-small", description="a preset name or a path to a space YAML file")
    dataset: DatasetConfig
    objectives: list[ObjectiveName] = Field(default_factory=lambda: _default_objectives())
    constraints: dict[ObjectiveName, float] = Field(
        default_factory=dict,
        description="hard bounds: accuracy >= value, every other objective <= value",
    )
    hardware: str | None = Field(None, description="a latency table (JSON file; over REST a table id or a "
                                                   "hardware profile name) for the latency_ms objective")
    latency: LatencySettings = LatencySettings()
    compute: ComputeConfig = ComputeConfig()
    budget: BudgetConfig = BudgetConfig()
    train: TrainConfig = TrainConfig()
    search: SearchSettings = SearchSettings()
    finalize: FinalizeConfig = FinalizeConfig()
    trust: TrustConfig = TrustConfig()

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: list[str]) -> list[str]:
        if len(v) < 1 or len(set(v)) != len(v):
            raise ValueError(f"objectives must be distinct and non-empty, got {v}")
        return v

    @model_validator(mode="after")
    def _latency_needs_table(self) -> SearchConfig:
        if ("latency_ms" in self.objectives or "latency_ms" in self.constraints) and not self.hardware:
            raise ValueError("the latency_ms objective or constraint needs 'hardware': a latency table")
        return self


class ProfileSettings(_Config):
    """How a hardware profile measures: device, runtime, batch, threads and the protocol's sizes."""

    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?)$")
    backend: str = Field("torch", description="a registered latency backend: torch, onnxruntime, ...")
    batch_size: int = Field(1, ge=1, le=1024)
    threads: int = Field(2, ge=1, le=256)
    repeats: int = Field(100, ge=2, le=10_000)
    block: int = Field(5, ge=1, le=1000)
    cover: int = Field(3, ge=1, le=20)
    allocator: Regime = Field(
        "steady", description="steady: glibc's malloc thresholds fixed while measuring, so a latency does not depend "
                              "on the measuring process's past; as-is: left as they are")

    _backend = field_validator("backend")(classmethod(lambda cls, v: BACKENDS.check(v)))


class ProfileRequest(ProfileSettings):
    """What `POST /api/v1/hardware/profiles` registers: a profile searches can name before any table exists."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class LatencyBuildRequest(ProfileSettings):
    """What `POST /api/v1/hardware/builds` queues."""

    space: str = "hybrid-small"
    calibration: int = Field(40, ge=0, le=1000)
    validation_samples: int = Field(100, ge=3, le=10_000)
    name: str | None = Field(None, max_length=100)


class Candidate(BaseModel):
    """One evaluated architecture: the same shape in result.json, the database and the API."""

    arch_id: str
    arch: dict[str, Any]
    metrics: dict[str, float]
    feasible: bool = True
    generation: int = 0
    worker: str | None = Field(None, description="the worker that evaluated it ('local': in-process)")
    trial_id: str | None = Field(None, description="the Ray Tune trial that trained it stand-alone (finalize)")


class SearchResult(BaseModel):
    config: SearchConfig
    space: dict[str, Any] = Field(description="the search space, re-targeted to the dataset")
    normalization: dict[str, list[float]] = Field(description="per-channel mean and std of the training inputs")
    front: list[Candidate]
    candidates: list[Candidate]
    hypervolume: float
    reference_point: dict[str, float] = Field(description="the hypervolume's reference point, per objective")
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per phase")
    latency: dict[str, Any] | None = Field(
        None, description="the profile latency_ms was predicted for, and the host-speed calibration applied")
    predictor: dict[str, float] | None = Field(
        None, description="the accuracy predictor's 5-fold held-out RMSE and Kendall tau on the evaluated archs")
    trust: dict[str, Any] | None = Field(
        None, description="the trust report (nas/trust.py): Kendall tau / Spearman rho between the supernet's and "
                          "stand-alone accuracy of archs trained from scratch")


class ConfigError(UserError):
    """A search config file cannot be read or is invalid; the message names the field."""


def load_search_config(path: str | Path) -> SearchConfig:
    """Read a YAML / JSON config; relative dataset and hardware paths are relative to the file."""
    file = Path(path)
    data = read_yaml(file, ConfigError, "config file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with at least 'space' and 'dataset'")
    try:
        config = SearchConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"invalid config {path}: {'; '.join(field_messages(err))}") from None
    base = file.resolve().parent
    if config.dataset.path and not Path(config.dataset.path).is_absolute():
        config.dataset.path = str(base / config.dataset.path)
    if config.hardware and not Path(config.hardware).is_absolute():
        config.hardware = str(base / config.hardware)
    return config

"""Shared set-up of the engine benchmarks: the default digits config and its trained supernet."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.data import DataSplits  # noqa: E402
from nas.pipeline import prepare  # noqa: E402
from nas.schemas import SearchConfig  # noqa: E402
from nas.train import train_supernet  # noqa: E402
from search_spaces import HybridSupernet, SearchSpaceSpec  # noqa: E402

DEFAULT = SearchConfig.model_validate({"space": "hybrid-small", "dataset": {"name": "digits"}})


def task_config(dataset: str, sandwich: str = "extremes", steps: int | None = None) -> SearchConfig:
    """`digits` (hybrid-small, the default config) or `seqtask` (hybrid-seq on benchmarks/seqtask.py's task: the
    two-line config, with the default training length unless `steps` is given)."""
    if dataset == "digits":
        return DEFAULT
    from seqtask import write

    path = write(Path("runs/seqtask.npz"))
    train = {"sandwich": sandwich} | ({"steps": steps} if steps else {})
    return SearchConfig.model_validate({"space": "hybrid-seq", "dataset": {"name": "npz", "path": str(path)},
                                        "train": train})


def task_workdir(dataset: str, sandwich: str, steps: int | None) -> Path:
    """Where a task's supernet is trained; benchmarks/two_line.py's search leaves the default one there."""
    if dataset == "digits":
        return Path("runs/bench-supernet")
    return Path(f"runs/bench-{dataset}-{sandwich}-{steps or 'auto'}")


def untrained_supernet(config: SearchConfig = DEFAULT) -> tuple[HybridSupernet, DataSplits, SearchSpaceSpec]:
    """The freshly initialized supernet of `config` (seeded as a search seeds it), with normalized data."""
    raw, space = prepare(config)
    data = raw.normalized()
    torch.manual_seed(config.train.seed)
    return HybridSupernet.from_spec(space), data, space


def trained_supernet(workdir: Path, config: SearchConfig = DEFAULT) -> tuple[HybridSupernet, DataSplits, SearchSpaceSpec]:
    """Train (or resume / reuse from `workdir`) the supernet of `config`; returns it with normalized data."""
    supernet, data, space = untrained_supernet(config)
    train_supernet(supernet, data, config.train, workdir)
    return supernet.eval(), data, space

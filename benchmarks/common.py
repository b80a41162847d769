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


def trained_supernet(workdir: Path, config: SearchConfig = DEFAULT) -> tuple[HybridSupernet, DataSplits, SearchSpaceSpec]:
    """Train (or resume / reuse from `workdir`) the supernet of `config`; returns it with normalized data."""
    raw, space = prepare(config)
    data = raw.normalized()
    torch.manual_seed(config.train.seed)
    supernet = HybridSupernet.from_spec(space)
    train_supernet(supernet, data, config.train, workdir)
    return supernet.eval(), data, space

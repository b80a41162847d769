"""The run folder: where a search keeps everything it makes, and reading back what it left.

    <data dir>/searches/<job id>/     a server job's folder (`job_workdir`); the CLI's run folder is --out
      config.json                     the config the folder belongs to (a rerun of another config is refused)
      train_checkpoint.pt             the supernet training checkpoint (a rerun resumes from it)
      supernet.safetensors            the trained supernet
      candidates.jsonl                every evaluated candidate (a rerun reuses them)
      study.db                        the NSGA-II Optuna study of `nas search` (the service keeps it in its database)
      models/<arch id>.safetensors    every front arch, ready to export (plan and input shape in its metadata)
      exports/                        exported files
      errors/attempt-<n>.txt          the traceback of an internal error in attempt n
      result.json                     front, candidates, hypervolume, timings
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file

from search_spaces import HybridSupernet, SearchSpaceSpec

CONFIG = "config.json"
RESULT = "result.json"
SUPERNET_WEIGHTS = "supernet.safetensors"
CANDIDATES = "candidates.jsonl"
STUDY = "study.db"
MODELS = "models"
EXPORTS = "exports"
ERRORS = "errors"


def job_workdir(data_dir: str | Path, job_id: str) -> Path:
    """A server job's folder: a search's run folder; any job's error tracebacks (under searches/, where
    data dirs have kept them since before jobs had kinds)."""
    return Path(data_dir) / "searches" / job_id


def saved_model(workdir: Path, arch_id: str) -> Path:
    """Where a front arch's ready-to-export network is kept."""
    return workdir / MODELS / f"{arch_id}.safetensors"


def traceback_file(workdir: Path, attempt: int) -> Path:
    return workdir / ERRORS / f"attempt-{attempt}.txt"


def load_supernet(workdir: Path, space: SearchSpaceSpec) -> HybridSupernet:
    """The trained supernet a finished run left in `workdir`."""
    net = HybridSupernet.from_spec(space)
    net.load_state_dict(load_file(workdir / SUPERNET_WEIGHTS))
    return net.eval()

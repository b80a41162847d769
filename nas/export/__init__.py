"""Export a candidate of a finished search: standalone PyTorch, TorchScript, ONNX, JSON, or a zip of all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nas.data import input_contract, prepare, usage_example
from nas.evaluate import Evaluator
from nas.export.formats import FORMATS
from nas.export.model import export_network, load_network
from nas.rundir import EXPORTS, SUPERNET_WEIGHTS, load_supernet, saved_model
from nas.schemas import Candidate, SearchResult
from search_spaces import UserError, space_from_dict
from search_spaces.standalone import Network

__all__ = ["FORMATS", "ExportError", "export_candidate", "export_file_name", "load_export_model"]


class ExportError(UserError):
    """The requested export cannot be made (unknown arch id or format, missing run files)."""


def find_candidate(result: SearchResult, arch_id: str) -> Candidate:
    """A candidate by full id or by a unique prefix of at least 6 characters."""
    matches = [c for c in result.candidates if c.arch_id == arch_id]
    if not matches and len(arch_id) >= 6:
        matches = [c for c in result.candidates if c.arch_id.startswith(arch_id)]
    if len(matches) != 1:
        problem = "matches several candidates" if matches else "is not a candidate of this search"
        raise ExportError(f"arch id {arch_id!r} {problem}")
    front = {c.arch_id: c for c in result.front}
    return front.get(matches[0].arch_id, matches[0])


def load_export_model(result: SearchResult, workdir: Path, cand: Candidate) -> tuple[Network, tuple[int, ...]]:
    """The saved network of a front arch, or (any other candidate) one rebuilt from the supernet."""
    saved = saved_model(workdir, cand.arch_id)
    if saved.exists():
        return load_network(saved)

    if not (workdir / SUPERNET_WEIGHTS).exists():
        raise ExportError(f"{workdir} has no {SUPERNET_WEIGHTS}: the search did not finish training")
    raw, space = prepare(result.config)  # BN recalibration needs the training data
    supernet = load_supernet(workdir, space)
    arch = space.parse(cand.arch)
    evaluator = Evaluator(supernet, raw.normalized(), result.config.search.bn_batches, result.config.train.batch_size)
    return export_network(supernet, arch, raw.mean, raw.std, evaluator.subnet(arch)), space.input_shape


def export_info(result: SearchResult, cand: Candidate, input_shape: tuple[int, ...]) -> dict[str, Any]:
    space = space_from_dict(result.space)
    return {
        "arch_id": cand.arch_id, "arch": cand.arch, "metrics": cand.metrics,
        "space": {"name": space.name, "version": space.version},
        "input_shape": list(input_shape), "normalization": result.normalization,
        "latency_profile": result.latency, "objectives": list(result.config.objectives),
        "input": input_contract(result.config.dataset, input_shape),
        "example": usage_example(result.config.dataset, cand.metrics.get("test_accuracy")),
    }


def export_file_name(arch_id: str, fmt: str) -> str:
    return FORMATS[fmt].file_name(arch_id)


def export_candidate(result_path: str | Path, arch_id: str, fmt: str, out: str | Path | None = None) -> Path:
    """Write candidate `arch_id` of the search whose result.json is `result_path` in format `fmt`, to `out`
    (an existing folder: into it; default: the run folder's exports/), named by the arch id unless `out` names
    the file."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS.names())}")
    result_file = Path(result_path)
    if not result_file.is_file():
        raise ExportError(f"result file not found: {result_path}")
    result = SearchResult.model_validate_json(result_file.read_text())
    workdir = result_file.parent
    cand = find_candidate(result, arch_id)
    net, input_shape = load_export_model(result, workdir, cand)
    info = export_info(result, cand, input_shape)
    name = export_file_name(cand.arch_id, fmt)
    if out is None:
        target = workdir / EXPORTS / name
    elif Path(out).is_dir():
        target = Path(out) / name
    else:
        target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(2, *input_shape)
    return FORMATS[fmt].make(net, info, example, target)

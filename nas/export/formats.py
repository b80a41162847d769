"""Export formats, each registered in FORMATS with its file suffix and a writer
make(net, info, example, target) -> the written path. File names derive from arch ids only, never from user
strings. A new format is one registered function here (or anywhere imported before use)."""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from nas.export.codegen import model_source
from nas.latency.allocator import UNRECORDED, describe
from nas.registry import Registry
from search_spaces.standalone import Network

Make = Callable[[Network, dict[str, Any], torch.Tensor, Path], Path]


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str  # "" for a folder
    description: str
    make: Make
    qualified: bool = False  # the file name says the format (a folder; a zip that is not the only zip)

    def file_name(self, arch_id: str) -> str:
        """`<first 16 characters of the arch id><suffix>`, with `-<format>` where the suffix does not say it."""
        return f"{arch_id[:16]}{f'-{self.name}' if self.qualified else ''}{self.suffix}"


FORMATS: Registry[ExportFormat] = Registry("export format")


def register_format(name: str, suffix: str, description: str, qualified: bool = False) -> Callable[[Make], Make]:
    def add(make: Make) -> Make:
        FORMATS.register(name)(ExportFormat(name, suffix, description, make, qualified))
        return make

    return add


def write_json(info: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(info, indent=2, sort_keys=True))
    return path


def write_pytorch(net: Network, info: dict[str, Any], folder: Path) -> Path:
    """folder/model.py (standalone code), folder/weights.safetensors, folder/README.md."""
    folder.mkdir(parents=True, exist_ok=True)
    shape = tuple(info["input_shape"])
    (folder / "model.py").write_text(model_source(info["arch_id"], net.plan, shape, f"Architecture {info['arch_id']}"))
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(folder / "weights.safetensors"))
    (folder / "README.md").write_text(readme(info, shape))
    return folder


def readme(info: dict[str, Any], shape: tuple[int, ...]) -> str:
    """The exported folder's README: how to call the model, the exact input it expects, its metrics."""
    metrics = "\n".join(f"| {k} | {v:.6g} |" for k, v in sorted(info["metrics"].items()))
    norm, contract = info["normalization"], info.get("input") or {}
    example = info.get("example")
    text = (
        f"# Architecture {info['arch_id']}\n\n"
        f"Found by hybrid-nas in space `{info['space']['name']}` (version {info['space']['version']}).\n\n"
        "```python\nfrom model import load_model\nmodel = load_model()\n"
        f"logits = model(x)  # x: (batch, {', '.join(map(str, shape))}) float32\n```\n\n"
        "## Input\n\n"
        f"- shape `(batch, {', '.join(map(str, shape))})`, layout {contract.get('layout', '')}, dtype float32\n"
        f"- values: {contract.get('transform', 'as the search loaded the dataset')}\n"
        f"- the model standardizes its input itself (per-channel mean `{norm['mean']}`, std `{norm['std']}`): "
        "do not standardize it again\n\n"
    )
    if example:
        text += f"Scoring it on the search's test split:\n\n```python\n{example}```\n\n"
    return text + (
        f"| metric | value |\n|---|---|\n{metrics}\n\n"
        f"Latency was predicted for: {latency_note(info.get('latency_profile'))}.\n"
    )


def latency_note(latency: dict[str, Any] | None) -> str:
    if not latency:
        return "no hardware profile (latency not predicted)"
    machine = (latency.get("machine") or {}).get("gpu") or (latency.get("machine") or {}).get("cpu") or "its machine"
    return (f"profile `{latency['profile']}` ({latency['device']}, {latency['backend']}, batch {latency['batch_size']}, "
            f"{latency['threads']} threads, {describe(latency.get('allocator', UNRECORDED))}, on {machine}; calibrated "
            f"x{latency['calibration']:.3f} to the host's speed during the search)")


@contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence what the exporters say about things that do not concern an exported network: torchvision
    ops that are not installed, deprecations inside torch, onnxscript's progress lines, the tracer's
    note on the scan's chunk-count branch (constant for a given input length, which an export fixes), and the
    TorchScript-based exporter's note that it leaves strided slices unfolded (they run as Slice ops)."""
    noisy = [logging.getLogger(n) for n in ("torch.onnx._internal.exporter._registration", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in noisy]
    for logger in noisy:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", "Constant folding - Only steps=1", UserWarning)
            yield
    finally:
        for logger, level in zip(noisy, levels, strict=True):
            logger.setLevel(level)


def write_torchscript(net: Network, example: torch.Tensor, path: Path) -> Path:
    with torch.no_grad(), quiet_exporter():
        traced = torch.jit.trace(net.eval(), example, check_trace=False)
    traced.save(str(path))
    return path


def write_onnx(net: torch.nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, str] | None = None) -> Path:
    """ONNX with a dynamic batch dimension (input 'x', output 'logits'), and `metadata` as the model's
    metadata properties."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    # traced with a batch of 2: with a batch of 1 the tracer may treat the batch as the constant 1 (torch
    # specializes size-1 dimensions, e.g. in 1-D convolutions) and the model would refuse other batches
    example = example[:1].expand(2, *example.shape[1:]).contiguous()
    with quiet_exporter():
        program = torch.onnx.export(
            net.eval(), (example,), dynamo=True, input_names=["x"], output_names=["logits"],
            dynamic_shapes=({0: batch},), verbose=False,
        )
    assert program is not None, "torch.onnx.export(dynamo=True) returns the program"
    program.save(str(path))
    if metadata:
        import onnx

        model = onnx.load(str(path))
        for key, value in metadata.items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, str(path))
    return path


@register_format("json", ".json", "the arch, its metrics, input contract and static plan")
def _json(net: Network, info: dict[str, Any], example: torch.Tensor, path: Path) -> Path:
    return write_json(info | {"plan": net.plan}, path)


@register_format("pytorch", "", "a folder: model.py (torch + safetensors only), weights.safetensors, README.md",
                 qualified=True)
def _pytorch(net: Network, info: dict[str, Any], example: torch.Tensor, path: Path) -> Path:
    return write_pytorch(net, info, path)


@register_format("torchscript", ".pt", "a traced TorchScript module")
def _torchscript(net: Network, info: dict[str, Any], example: torch.Tensor, path: Path) -> Path:
    return write_torchscript(net, example, path)


@register_format("onnx", ".onnx", "ONNX with a dynamic batch dimension (input 'x', output 'logits')")
def _onnx(net: Network, info: dict[str, Any], example: torch.Tensor, path: Path) -> Path:
    metadata = {"arch_id": info["arch_id"], "input": json.dumps(info.get("input") or {}),
                "normalization": json.dumps(info["normalization"]),
                "latency_profile": json.dumps(info.get("latency_profile"))}
    return write_onnx(net, example, path, metadata)


@register_format("bundle", ".zip", "a zip of every other format", qualified=True)
def write_bundle(net: Network, info: dict[str, Any], example: torch.Tensor, path: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        for fmt in FORMATS:
            entry = FORMATS[fmt]
            if fmt != "bundle":  # inside the zip a folder format is named by the format alone: pytorch/
                entry.make(net, info, example, staging / (entry.file_name(info["arch_id"]) if entry.suffix else fmt))
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for file in sorted(staging.rglob("*")):
                if file.is_file():
                    zf.write(file, file.relative_to(staging))
    return path

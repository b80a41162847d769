"""Writers for each export format. File names derive from arch ids only, never from user strings."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from nas.export.codegen import model_source
from search_spaces.standalone import Network

FORMATS = ("json", "pytorch", "torchscript", "onnx", "bundle")
SUFFIX = {"json": ".json", "pytorch": "", "torchscript": ".pt", "onnx": ".onnx", "bundle": ".zip"}


def write_json(info: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(info, indent=2, sort_keys=True))
    return path


def write_pytorch(net: Network, info: dict[str, Any], folder: Path) -> Path:
    """folder/model.py (standalone code), folder/weights.safetensors, folder/README.md."""
    folder.mkdir(parents=True, exist_ok=True)
    shape = tuple(info["input_shape"])
    (folder / "model.py").write_text(model_source(info["arch_id"], net.plan, shape, f"Architecture {info['arch_id']}"))
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(folder / "weights.safetensors"))
    metrics = "\n".join(f"| {k} | {v:.6g} |" for k, v in sorted(info["metrics"].items()))
    norm = info["normalization"]
    (folder / "README.md").write_text(
        f"# Architecture {info['arch_id']}\n\n"
        f"Found by hybrid-nas in space `{info['space']['name']}` (version {info['space']['version']}).\n\n"
        "```python\nfrom model import load_model\nmodel = load_model()\n"
        f"logits = model(x)  # x: (batch, {', '.join(map(str, shape))}) float32, raw inputs\n```\n\n"
        f"Input shape (without batch): `{list(shape)}`. The model normalizes its input itself: "
        f"per-channel mean `{norm['mean']}`, std `{norm['std']}`.\n\n"
        f"| metric | value |\n|---|---|\n{metrics}\n\n"
        f"Latency was predicted for: {info.get('hardware') or 'no latency table (not predicted)'}.\n"
    )
    return folder


def write_torchscript(net: Network, example: torch.Tensor, path: Path) -> Path:
    with torch.no_grad():
        traced = torch.jit.trace(net.eval(), example, check_trace=False)
    traced.save(str(path))
    return path


def write_onnx(net: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    """ONNX with a dynamic batch dimension (input 'x', output 'logits')."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(
        net.eval(), (example,), dynamo=True, input_names=["x"], output_names=["logits"],
        dynamic_shapes=({0: batch},), verbose=False,
    )
    assert program is not None, "torch.onnx.export(dynamo=True) returns the program"
    program.save(str(path))
    return path


def write_bundle(net: Network, info: dict[str, Any], example: torch.Tensor, path: Path, workdir: Path) -> Path:
    """A zip of every format, plus the latency validation summary when one is known."""
    staging = workdir / f"bundle-{info['arch_id'][:16]}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    stem = info["arch_id"][:16]
    write_json(info, staging / f"{stem}.json")
    write_pytorch(net, info, staging / "pytorch")
    write_torchscript(net, example, staging / f"{stem}.pt")
    write_onnx(net, example, staging / f"{stem}.onnx")
    if info.get("latency_validation"):
        write_json(info["latency_validation"], staging / "latency_validation.json")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(staging.rglob("*")):
            if file.is_file():
                zf.write(file, file.relative_to(staging))
    shutil.rmtree(staging, ignore_errors=True)
    return path

"""The exported network: input normalization folded in, then the arch's static layers.

Users feed inputs exactly as the dataset provides them. The network is a `standalone.Network`
whose plan starts with a `normalize` layer; its weights come from a static subnet (inherited
weights with recalibrated BN, or fine-tuned).
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from nas.files import Guard, save_tensors
from search_spaces import Arch, HybridSupernet
from search_spaces.standalone import Network


def normalize_layer(dims: int, mean: list[float], std: list[float]) -> dict[str, Any]:
    return {"type": "normalize", "dims": dims, "mean": list(mean), "std": list(std)}


def export_network(
    supernet: HybridSupernet, arch: Arch, mean: list[float], std: list[float], trained: nn.Module | None = None,
) -> Network:
    """normalize + the static layers of `arch`, with the weights of `trained` (default: extracted)."""
    static = trained if trained is not None else supernet.extract(arch)
    plan = [normalize_layer(supernet.space.input.dims, mean, std)] + supernet.plan(arch)
    net = Network(plan)
    shifted = {}
    for key, value in static.state_dict().items():
        index, rest = key.split(".", 1)  # layer index of the static network, shifted past `normalize`
        shifted[f"{int(index) + 1}.{rest}"] = value
    shifted |= {k: v for k, v in net.state_dict().items() if k.startswith("0.")}
    net.load_state_dict(shifted)
    return net.eval()


def save_network(net: Network, input_shape: tuple[int, ...], path: Path, guard: Guard = nullcontext) -> None:
    """Weights as safetensors; the plan and input shape go in the file's metadata, so the file alone rebuilds it."""
    save_tensors(path, net, {"plan": json.dumps(net.plan), "input_shape": json.dumps(list(input_shape))}, guard)


def load_network(path: Path) -> tuple[Network, tuple[int, ...]]:
    """The network saved by save_network, in eval mode, and its input shape (without batch)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    net = Network(json.loads(meta["plan"]))
    net.load_state_dict(load_file(path))
    return net.eval(), tuple(json.loads(meta["input_shape"]))

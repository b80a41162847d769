"""Peak activation memory and weights size of an arch, without running it on data.

The runtime modelled is PyTorch's native CPU kernels (oneDNN off): every activation tensor, plus each
convolution's im2col buffer, as in the simple runtimes of small devices. oneDNN's reorders and algorithm
choices are its own and left out. Each distinct static layer (its configuration and input size) is
traced once on the meta device: a dispatch mode replays every tensor the layer's forward allocates and
frees (no data, no compute) and records the most bytes alive at once, each convolution's columns
included while it runs.

A network's peak is then, over its layers, the input held by the caller plus the layer's input (the
previous layer's output) plus what the layer allocates at its peak. `tests/search_spaces/test_memory.py`
checks this against the CPU allocator's live bytes (torch.profiler) during a real forward.
"""

from __future__ import annotations

import functools
import json
import math
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from search_spaces.counts import count
from search_spaces.walk import walk

if TYPE_CHECKING:
    from search_spaces.arch import Arch
    from search_spaces.spec import SearchSpaceSpec

MIB = 2**20
BYTES_PER_VALUE = 4  # float32


class LayerMemory(NamedTuple):
    peak: int  # most bytes the layer's forward holds at once beyond its input
    output: int  # bytes of its output
    output_shape: tuple[int, ...]  # batch first


def _conv_args(func: Any, args: Sequence[Any]) -> tuple[Any, ...] | None:
    """(input, weight, stride, padding, dilation, transposed, groups) of a convolution op, else None."""
    aten = torch.ops.aten
    if func is aten.convolution.default:
        return args[0], args[1], args[3], args[4], args[5], args[6], args[8]
    if func in (aten.conv1d.default, aten.conv2d.default):  # seen undecomposed under inference mode
        dims = 1 if func is aten.conv1d.default else 2
        full = list(args) + [None] * (7 - len(args))
        stride, padding, dilation = ([v] * dims if isinstance(v, int) else v
                                     for v in (full[3] or 1, full[4] or 0, full[5] or 1))
        return full[0], full[1], stride, padding, dilation, False, full[6] or 1
    return None


def _conv_workspace(conv: tuple[Any, ...], out: torch.Tensor) -> int:
    """Bytes PyTorch's native CPU convolution allocates inside one call (freed when it returns): the im2col
    columns, except for an unstrided, unpadded 1x1 convolution; a grouped one builds each group's output
    apart (and its columns one group at a time)."""
    x, weight, stride, padding, dilation, transposed, groups = conv
    if transposed:
        return 0
    kernel = list(weight.shape[2:])
    plain = all(v == 1 for v in [*kernel, *stride, *dilation])
    if plain and not isinstance(padding, str) and all(p == 0 for p in padding):
        return 0
    columns = (x.shape[1] // groups) * math.prod(kernel) * math.prod(out.shape[2:]) * x.shape[0] * out.element_size()
    return max(columns, out.nbytes) if groups > 1 else columns


class _LiveBytes(TorchDispatchMode):
    """Counts the bytes of the storages alive (created under the mode and not yet freed), and their peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live, self.peak = 0, 0
        self._sizes: dict[int, int] = {}

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = storage._cdata
        if key in self._sizes:
            return
        self._sizes[key] = storage.nbytes()
        self.live += storage.nbytes()
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        conv = _conv_args(func, args)
        if conv is not None:
            self.peak = max(self.peak, self.live + out.nbytes + _conv_workspace(conv, out))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and not t._is_view():
                self._track(t)
        return out


@functools.lru_cache(maxsize=65_536)
def _layer_memory(config_json: str, input_shape: tuple[int, ...]) -> LayerMemory:
    from search_spaces.standalone import Network  # builds modules: only when a layer is traced the first time

    with torch.device("meta"):
        layer = Network([json.loads(config_json)]).eval()
        x = torch.empty(input_shape)
    mode = _LiveBytes()
    with torch.inference_mode(), mode:
        y = layer(x)
        output, shape = y.nbytes, tuple(y.shape)
        del y
    return LayerMemory(mode.peak, output, shape)


def layer_memory(config: dict[str, Any], input_shape: Sequence[int]) -> LayerMemory:
    """What one static layer holds at its peak, for an input batch of `input_shape` (batch first)."""
    return _layer_memory(json.dumps(config, sort_keys=True), tuple(input_shape))


def peak_activation_bytes(space: SearchSpaceSpec, arch: Arch, batch: int = 1) -> int:
    """Most bytes of activations alive at once in a forward pass of `arch` (the input included)."""
    shape = (batch, *space.input_shape)
    held = math.prod(shape) * BYTES_PER_VALUE  # the caller's input stays alive throughout
    peak, incoming = 0, 0  # incoming: the previous layer's output, this layer's input
    for site in walk(space, arch):
        layer = layer_memory(site.config, shape)
        peak = max(peak, held + incoming + layer.peak)
        incoming, shape = layer.output, layer.output_shape
    return peak


def weights_bytes(space: SearchSpaceSpec, arch: Arch) -> int:
    """Bytes of the extracted network's parameters (float32)."""
    return count(space, arch).params * BYTES_PER_VALUE


def memory_metrics(space: SearchSpaceSpec, arch: Arch) -> dict[str, float]:
    """The `peak_memory_mb` (batch 1) and `weights_mb` objectives, in MiB."""
    return {"peak_memory_mb": peak_activation_bytes(space, arch) / MIB, "weights_mb": weights_bytes(space, arch) / MIB}

"""Which static layers a space can produce, and which ones an arch uses, with their input sizes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from nas.latency.table import layer_key
from search_spaces import Arch, HybridSupernet
from search_spaces.counts import COUNTERS
from search_spaces.spec import LAYER_CLASSES

LayerUse = tuple[dict[str, Any], int]  # (plan entry, input size)


def arch_layers(supernet: HybridSupernet, arch: Arch) -> list[LayerUse]:
    """The static layers of `arch` in order, each with the size (side or length) of its input."""
    out, size = [], supernet.space.input.size
    for entry in supernet.plan(arch):
        out.append((entry, size))
        size = COUNTERS[entry["type"]](entry, size).size
    return out


def _layer_choices(supernet: HybridSupernet, stage: int):
    space = supernet.space
    for block in space.stages[stage].blocks:
        opts = space.block_params.options(block)
        for combo in itertools.product(*opts.values()):
            yield LAYER_CLASSES[block](**dict(zip(opts, combo, strict=True)))


def space_layers(supernet: HybridSupernet) -> Iterator[LayerUse]:
    """Every distinct static layer (with input size) any arch of the space can use."""
    space = supernet.space
    seen: set[str] = set()

    def emit(entry: dict[str, Any], size: int) -> Iterator[LayerUse]:
        key = layer_key(entry, size)
        if key not in seen:
            seen.add(key)
            yield entry, size

    stem = space.stem
    for res in space.input.resolutions:
        if res != space.input.size:
            yield from emit({"type": "resize", "dims": space.input.dims, "size": res}, space.input.size)
        for width in stem.widths:
            entry = {"type": "stem", "dims": space.input.dims, "cin": space.input.channels, "cout": width,
                     "kernel": stem.kernel, "stride": stem.stride}
            yield from emit(entry, res)
        size = COUNTERS["stem"](entry, res).size  # every stem width gives the same output size
        cins = stem.widths
        for i, st in enumerate(space.stages):
            out_size = (size - 1) // st.stride + 1
            for j in range(max(st.depths)):
                in_size = size if j == 0 else out_size
                for cin in (cins if j == 0 else st.widths):
                    for cout in st.widths:
                        if j > 0 and cin != cout:
                            continue
                        for layer in _layer_choices(supernet, i):
                            entry = supernet.block(i, j, layer.type).plan(cin, cout, layer)
                            yield from emit(entry, in_size)
            size, cins = out_size, st.widths
        for cin in cins:
            yield from emit(supernet.head.plan(cin), size)

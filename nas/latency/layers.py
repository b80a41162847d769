"""Which static layers a space can produce, and which ones an arch uses, with their input sizes.

Both read search_spaces.walk: the same walk that extraction and the analytic counts use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nas.latency.table import LatencyTable, layer_key
from search_spaces import Arch, SearchSpaceSpec, walk
from search_spaces.walk import space_sites

LayerUse = tuple[dict[str, Any], int]  # (static layer configuration, input size)


def arch_layers(space: SearchSpaceSpec, arch: Arch) -> list[LayerUse]:
    """The static layers of `arch` in order, each with the size (side or length) of its input."""
    return [(site.config, site.input_size) for site in walk(space, arch)]


def space_layers(space: SearchSpaceSpec) -> Iterator[LayerUse]:
    """Every distinct static layer (with input size) any arch of the space can use."""
    seen: set[str] = set()
    for site in space_sites(space):
        key = layer_key(site.config, site.input_size)
        if key not in seen:
            seen.add(key)
            yield site.config, site.input_size


def missing_layers(table: LatencyTable, space: SearchSpaceSpec, cover: int = 1) -> dict[str, int]:
    """The layers of `space` the table holds in fewer than `cover` contexts: key -> contexts still needed."""
    have = table.samples_by_key()
    return {key: cover - have.get(key, 0) for key in (layer_key(e, s) for e, s in space_layers(space))
            if have.get(key, 0) < cover}

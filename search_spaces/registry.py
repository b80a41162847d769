"""The registry of block families: one registration bundles everything the product needs for a family.

A family is registered by decorating its elastic block class (see `blocks/base.py:register_block`).
Everything that lists block types reads this registry: arch parsing, space validation, sampling, the
static network builder, analytic counts, latency-layer enumeration, the CLI, the API's `/spaces` and
the dashboard's colours. This module imports nothing heavy so that `arch.py` and `spec.py` can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search_spaces.arch import LayerChoice
    from search_spaces.counts import Counts
    from search_spaces.spec import FamilyParams
    from search_spaces.walk import Placement


@dataclass(frozen=True)
class BlockFamily:
    name: str
    choice: type[LayerChoice]  # the arch's choices for one layer of this family (pydantic)
    params: type[FamilyParams]  # the space's elastic options for the family (YAML `block_params.<name>`)
    elastic: type  # the supernet's module at one layer position (an ElasticBlock)
    static: type  # the plain torch module of an extracted network, built from `config(...)`
    config: Callable[[Placement, Any, Any], dict[str, Any]]  # (placement, choice, params) -> constructor args
    count: Callable[[dict[str, Any], int], Counts]  # (static config, input size) -> params and MACs
    label: str  # display name
    colour: str  # CSS colour of the family in diagrams
    letter: str  # one-letter summary in the CLI's tables

    def describe(self) -> dict[str, Any]:
        """What the API's `/spaces` and the dashboard show of the family."""
        return {"name": self.name, "label": self.label, "colour": self.colour, "letter": self.letter,
                "options": self.params().model_dump(mode="json")}


BLOCKS: dict[str, BlockFamily] = {}


def family(name: str) -> BlockFamily:
    """The registered family `name`; a ValueError names the registered ones otherwise."""
    try:
        return BLOCKS[name]
    except KeyError:
        raise ValueError(f"unknown block type {name!r}; registered: {', '.join(sorted(BLOCKS))}") from None


def add_family(entry: BlockFamily) -> None:
    if entry.name in BLOCKS:
        raise ValueError(f"block family {entry.name!r} is already registered")
    BLOCKS[entry.name] = entry


def remove_family(name: str) -> None:
    """Unregister a family (tests that register their own use it to clean up)."""
    BLOCKS.pop(name, None)

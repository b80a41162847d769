"""Arch: a frozen, canonical assignment of every choice of a search space.

Its id is the sha256 of its canonical JSON, the key for caches, the database and latency tables.
Each layer is the `LayerChoice` of a registered block family, chosen by its `type` field.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from search_spaces import registry


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Compact(_Frozen):
    """A choice added later gets a default that reproduces the arch as it was, and is left out of the JSON
    while it holds that default: archs saved before keep their JSON and so their id."""

    @model_serializer(mode="wrap")
    def _without_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for name, spec in type(self).model_fields.items():
            if name != "type" and not spec.is_required() and data.get(name) == spec.default:
                data.pop(name)
        return data


class LayerChoice(_Compact):
    """Base of every block family's per-layer choices; `type` names the family."""

    type: str


def _as_layer(value: Any) -> Any:
    """A JSON object becomes the LayerChoice of the family its `type` names."""
    if isinstance(value, LayerChoice) or not isinstance(value, dict):
        return value
    entry = registry.family(str(value.get("type")))
    try:
        return entry.choice.model_validate(value)
    except ValidationError as err:
        first = err.errors()[0]
        raise ValueError(f"{entry.name} layer: {'.'.join(map(str, first['loc'])) or '<root>'}: {first['msg']}") from None


Layer = Annotated[SerializeAsAny[LayerChoice], BeforeValidator(_as_layer)]


class StageArch(_Compact):
    width: int
    layers: tuple[Layer, ...]
    # searchable downsampling (stages whose spec lists `transitions`): the stage starts with a separate
    # transition layer of this kind and stride; None: the stage's fixed stride, taken by its first block
    stride: int | None = None
    transition: str | None = None

    @property
    def depth(self) -> int:
        return len(self.layers)


class Arch(_Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(cached_property,))

    resolution: int
    stem_width: int
    stages: tuple[StageArch, ...]

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace; equal archs give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @cached_property
    def id(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def layer_types(self) -> list[str]:
        return [layer.type for stage in self.stages for layer in stage.layers]

"""Arch: a frozen, canonical assignment of every choice of a search space.

Its id is the sha256 of its canonical JSON, the key for caches, the database and latency tables.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConvLayer(_Frozen):
    type: Literal["conv"] = "conv"
    kernel: int
    expand: int
    se: bool


class AttentionLayer(_Frozen):
    type: Literal["attention"] = "attention"
    heads: int
    mlp_ratio: int


class SSMLayer(_Frozen):
    type: Literal["ssm"] = "ssm"
    state: int
    expand: int


Layer = Annotated[ConvLayer | AttentionLayer | SSMLayer, Field(discriminator="type")]


class StageArch(_Frozen):
    width: int
    layers: tuple[Layer, ...]

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

"""`window`: MaxViT's multi-axis attention as a block family. Each block attends either within local
windows (block attention) or across a sparse grid of tokens (grid attention, a dilated global mix), so
its cost grows linearly with the number of tokens and it stays usable at 224x224. A stage of such blocks
that alternates the two axes is MaxViT's layout; the search picks the axis per layer. Elastic heads, MLP
ratio, window size and axis; otherwise as `attention` (conv position encoding, pre-norm MLP)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator
from torch import Tensor

from search_spaces.blocks.attention import (
    AttentionLayer,
    AttentionParams,
    ElasticAttention,
    count_attention_block,
)
from search_spaces.blocks.base import register_block
from search_spaces.counts import Counts
from search_spaces.spec import sorted_choices
from search_spaces.standalone import WindowAttentionBlock, window_attention_mix
from search_spaces.walk import Placement


class WindowLayer(AttentionLayer):
    type: Literal["window"] = "window"  # type: ignore[assignment]
    window: int
    grid: bool


class WindowParams(AttentionParams):
    windows: list[int] = [4, 7]
    grid: list[bool] = [False, True]

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: list[int]) -> list[int]:
        if any(w < 2 for w in v):
            raise ValueError(f"windows must be at least 2 tokens a side, got {v}")
        return sorted_choices(v, "windows")

    _g = field_validator("grid")(classmethod(lambda cls, v: sorted_choices(v, "grid")))

    def options(self) -> dict[str, list]:
        return super().options() | {"window": self.windows, "grid": self.grid}


def count_window(p: dict[str, Any], size: int) -> Counts:
    def pairs(side: int) -> int:  # each padded token meets the tokens of its group
        w = min(p["window"], side)
        padded = -(-side // w) * w
        return padded ** p["dims"] * w ** p["dims"]

    return count_attention_block(p, size, pairs)


@register_block("window", choice=WindowLayer, params=WindowParams, static=WindowAttentionBlock, count=count_window,
                label="window / grid attention (MaxViT)", colour="#fed7aa", letter="w")
class ElasticWindowAttention(ElasticAttention):
    def mix(self, t: Tensor, x: Tensor, qkv: dict[str, Tensor], proj: dict[str, Tensor], layer: Any) -> Tensor:
        return window_attention_mix(t, x.shape[-1], x.dim() - 2, qkv["weight"], qkv["bias"], proj["weight"],
                                    proj["bias"], self.head_dim, layer.window, layer.grid)

    @staticmethod
    def static_config(at: Placement, layer: AttentionLayer, params: AttentionParams) -> dict[str, Any]:
        assert isinstance(layer, WindowLayer)
        return ElasticAttention.static_config(at, layer, params) | {"window": layer.window, "grid": layer.grid}

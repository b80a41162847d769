"""`attention`: conv position encoding, pre-norm multi-head self-attention, pre-norm MLP.

Elastic head count at a fixed head dim (q, k and v each keep their first `heads` heads), an elastic MLP
ratio and, where the space offers it (`projections: [linear, conv]`), CvT's convolutional projection:
q, k and v from a depthwise 3x3 conv over the token map (one output per part and channel) before
their linear maps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from pydantic import field_validator
from torch import Tensor, nn

from search_spaces.arch import LayerChoice
from search_spaces.blocks.base import Site, TokenBlock, entry_config, register_block, transition_counts
from search_spaces.counts import Counts, linear, total
from search_spaces.dynamic import DynamicConv, DynamicLayerNorm, DynamicLinear, prefixed
from search_spaces.dynamic.linear import init_linear_
from search_spaces.spec import FamilyParams, sorted_choices
from search_spaces.standalone import AttentionBlock, attention_mix, conv_projection, from_tokens, to_tokens
from search_spaces.walk import Placement

Projection = Literal["linear", "conv"]


class AttentionLayer(LayerChoice):
    type: Literal["attention"] = "attention"
    heads: int
    mlp_ratio: int
    projection: Projection = "linear"


class AttentionParams(FamilyParams):
    heads: list[int] = [1, 2, 4]
    head_dim: int = 16
    mlp_ratios: list[int] = [1, 2, 4]
    projections: list[Projection] = ["linear"]

    _h = field_validator("heads")(classmethod(lambda cls, v: sorted_choices(v, "heads")))
    _m = field_validator("mlp_ratios")(classmethod(lambda cls, v: sorted_choices(v, "mlp_ratios")))

    @field_validator("projections")
    @classmethod
    def _projections(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v) or not v:
            raise ValueError(f"projections must list distinct values, got {v}")
        return sorted(v, key=["linear", "conv"].index)  # smallest() takes the linear one

    def options(self) -> dict[str, list]:
        return {"heads": self.heads, "mlp_ratio": self.mlp_ratios, "projection": self.projections}


def count_attention(p: dict[str, Any], size: int) -> Counts:
    return count_attention_block(p, size, lambda side: (side ** p["dims"]) ** 2)


def count_attention_block(p: dict[str, Any], size: int, pairs: Callable[[int], int]) -> Counts:
    """Counts of an AttentionBlock whose mixer scores `pairs(side)` query-key pairs per head dim."""
    entry = transition_counts(p, size)
    size = entry[-1].size
    c, d, inner, hidden = p["cout"], p["dims"], p["heads"] * p["head_dim"], p["mlp_hidden"]
    n = size**d  # tokens
    pos = Counts(c * 3**d + c, c * 3**d * n, size)
    norms = Counts(4 * c, 0, size)
    if p.get("conv_qkv"):  # depthwise 3x3 with three outputs per channel, and their biases
        norms = Counts(norms.params + 3 * c * 3**d + 3 * c, 3 * c * 3**d * n, size)
    sdpa = Counts(0, 2 * pairs(size) * inner, size)  # q k^T and attn v
    parts = [pos, norms, linear(c, 3 * inner, n), sdpa, linear(inner, c, n), linear(c, hidden, n), linear(hidden, c, n)]
    return total(*entry, *parts, size=size)


@register_block("attention", choice=AttentionLayer, params=AttentionParams, static=AttentionBlock,
                count=count_attention, label="attention", colour="#fde68a")
class ElasticAttention(TokenBlock):
    def __init__(self, site: Site):
        super().__init__(site)
        p = site.params
        c = site.cout
        self.head_dim = p.head_dim
        inner_max = max(p.heads) * p.head_dim
        hidden_max = c * max(p.mlp_ratios)
        self.pos = DynamicConv(site.dims, c, c, (3,), depthwise=True, bias=True)
        self.norm1 = DynamicLayerNorm(c)
        self.qkv_conv = DynamicConv(site.dims, c, 3 * c, (3,), depthwise=True, bias=True) if "conv" in p.projections else None
        self.qkv_weight = nn.Parameter(torch.empty(3, inner_max, c))  # q, k, v stacked
        self.qkv_bias = nn.Parameter(torch.empty(3, inner_max))
        for i in range(3):
            init_linear_(self.qkv_weight[i], self.qkv_bias[i], c)
        self.proj = DynamicLinear(inner_max, c)
        self.norm2 = DynamicLayerNorm(c)
        self.fc1 = DynamicLinear(c, hidden_max)
        self.fc2 = DynamicLinear(hidden_max, c)

    def _qkv(self, c: int, heads: int) -> dict[str, Tensor]:
        inner = heads * self.head_dim
        return {
            "weight": self.qkv_weight[:, :inner, :c].reshape(3 * inner, c),
            "bias": self.qkv_bias[:, :inner].reshape(3 * inner),
        }

    def forward(self, x: Tensor, cout: int, layer: AttentionLayer) -> Tensor:
        x = self.enter(x, cout)
        x = x + self.pos(x, cout)
        t = to_tokens(x)  # (B, N, C)
        qkv = self._qkv(cout, layer.heads)
        proj = self.proj.weights(layer.heads * self.head_dim, cout)
        u = self.norm1(t)
        if layer.projection == "conv":
            w = self._qkv_conv(cout)
            u = conv_projection(u, x, w["weight"], w["bias"])
        t = t + self.mix(u, x, qkv, proj, layer)
        t = t + self.fc2(F.gelu(self.fc1(self.norm2(t), cout * layer.mlp_ratio)), cout)
        return from_tokens(t, x)

    def _qkv_conv(self, c: int) -> dict[str, Tensor]:
        assert self.qkv_conv is not None, "the space offers no conv projection"
        conv = self.qkv_conv
        return {"weight": conv.weight[: 3 * c], "bias": cast(Tensor, conv.bias)[: 3 * c]}  # channel-major parts

    def mix(self, t: Tensor, x: Tensor, qkv: dict[str, Tensor], proj: dict[str, Tensor], layer: Any) -> Tensor:
        """The token mixer (as the static block's `mix`), with sliced weights: global attention here."""
        return attention_mix(t, qkv["weight"], qkv["bias"], proj["weight"], proj["bias"], self.head_dim)

    @staticmethod
    def static_config(at: Placement, layer: AttentionLayer, params: AttentionParams) -> dict[str, Any]:
        config = entry_config(at) | {"heads": layer.heads, "head_dim": params.head_dim,
                                     "mlp_hidden": at.cout * layer.mlp_ratio}
        return config | ({"conv_qkv": True} if layer.projection == "conv" else {})  # old layers keep their keys

    def weights(self, cin: int, cout: int, layer: AttentionLayer) -> dict[str, Tensor]:
        hidden = cout * layer.mlp_ratio
        return (
            self.entry_weights(cin, cout)
            | prefixed("pos", self.pos.weights(cout, cout))
            | prefixed("norm1", self.norm1.weights(cout))
            | (prefixed("qkv_conv", self._qkv_conv(cout)) if layer.projection == "conv" else {})
            | prefixed("qkv", self._qkv(cout, layer.heads))
            | prefixed("proj", self.proj.weights(layer.heads * self.head_dim, cout))
            | prefixed("norm2", self.norm2.weights(cout))
            | prefixed("fc1", self.fc1.weights(cout, hidden))
            | prefixed("fc2", self.fc2.weights(hidden, cout))
        )

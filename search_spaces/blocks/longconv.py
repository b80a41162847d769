"""`longconv`: a global convolution over the tokens, SGConv / S4D style: the kernel is as long as the
sequence (every token sees every earlier one, as in an SSM's convolution view) and is built from a few
short sub-kernels, each stretched to twice the span of the one before and damped, so it has few
parameters and a decaying memory. Then a GELU gate with an output projection, and a pre-norm MLP.

The supernet convolves by FFT (O(L log L)); the extracted layer runs the same kernel as a plain causal
convolution, which ONNX and every runtime support (opset 17's DFT is not needed) and which the analytic
MACs count exactly. Elastic sub-kernel size and MLP ratio."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor, nn

from search_spaces.arch import LayerChoice
from search_spaces.blocks.base import Site, TokenBlock, entry_config, register_block, transition_counts
from search_spaces.counts import Counts, linear, total
from search_spaces.dynamic import DynamicLayerNorm, DynamicLinear, prefixed
from search_spaces.spec import FamilyParams, sorted_choices
from search_spaces.standalone import LongConvBlock, from_tokens, long_conv_fft, long_conv_kernel, to_tokens
from search_spaces.walk import Placement


class LongConvLayer(LayerChoice):
    type: Literal["longconv"] = "longconv"
    sub_kernel: int
    mlp_ratio: int


class LongConvParams(FamilyParams):
    sub_kernels: list[int] = [4, 8]
    mlp_ratios: list[int] = [1, 2]
    scales: int = Field(6, ge=1, le=12, description="sub-kernels per channel; the kernel spans sub_kernel x (2^scales - 1) tokens")

    _k = field_validator("sub_kernels")(classmethod(lambda cls, v: sorted_choices(v, "sub_kernels")))
    _m = field_validator("mlp_ratios")(classmethod(lambda cls, v: sorted_choices(v, "mlp_ratios")))

    def options(self) -> dict[str, list]:
        return {"sub_kernel": self.sub_kernels, "mlp_ratio": self.mlp_ratios}


def count_longconv(p: dict[str, Any], size: int) -> Counts:
    entry = transition_counts(p, size)
    size = entry[-1].size
    c, n, hidden = p["cout"], size ** p["dims"], p["mlp_hidden"]
    kernel = Counts(c * p["scales"] * p["sub_kernel"] + c, c * n * n, size)  # sub-kernels and D; the full conv
    parts = [Counts(4 * c, 0, size), kernel, linear(c, c, n), linear(c, hidden, n), linear(hidden, c, n)]
    return total(*entry, *parts, size=size)


@register_block("longconv", choice=LongConvLayer, params=LongConvParams, static=LongConvBlock, count=count_longconv,
                label="long convolution (SGConv / S4D)", colour="#99f6e4", letter="l")
class ElasticLongConv(TokenBlock):
    def __init__(self, site: Site):
        super().__init__(site)
        p: LongConvParams = site.params
        c = site.cout
        self.norm1 = DynamicLayerNorm(c)
        # a smaller sub-kernel keeps the first taps of each; decay with depth as SGConv initialises them
        self.sub_kernels = nn.Parameter(torch.randn(c, p.scales, max(p.sub_kernels)) / max(p.sub_kernels) ** 0.5)
        self.D = nn.Parameter(torch.ones(c))
        self.out_proj = DynamicLinear(c, c)
        self.norm2 = DynamicLayerNorm(c)
        self.fc1 = DynamicLinear(c, c * max(p.mlp_ratios))
        self.fc2 = DynamicLinear(c * max(p.mlp_ratios), c)

    def _mixer(self, cout: int, layer: LongConvLayer) -> dict[str, Tensor]:
        return {"sub_kernels": self.sub_kernels[:cout, :, : layer.sub_kernel], "D": self.D[:cout]}

    def forward(self, x: Tensor, cout: int, layer: LongConvLayer) -> Tensor:
        x = self.enter(x, cout)
        t = to_tokens(x)
        m = self._mixer(cout, layer)
        mixed = long_conv_fft(self.norm1(t), long_conv_kernel(m["sub_kernels"], t.shape[1]), m["D"])
        t = t + self.out_proj(F.gelu(mixed), cout)
        t = t + self.fc2(F.gelu(self.fc1(self.norm2(t), cout * layer.mlp_ratio)), cout)
        return from_tokens(t, x)

    @staticmethod
    def static_config(at: Placement, layer: LongConvLayer, params: LongConvParams) -> dict[str, Any]:
        return entry_config(at) | {"sub_kernel": layer.sub_kernel, "scales": params.scales,
                                   "mlp_hidden": at.cout * layer.mlp_ratio}

    def weights(self, cin: int, cout: int, layer: LongConvLayer) -> dict[str, Tensor]:
        hidden = cout * layer.mlp_ratio
        return (self.entry_weights(cin, cout) | prefixed("norm1", self.norm1.weights(cout)) | self._mixer(cout, layer)
                | prefixed("out_proj", self.out_proj.weights(cout, cout)) | prefixed("norm2", self.norm2.weights(cout))
                | prefixed("fc1", self.fc1.weights(cout, hidden)) | prefixed("fc2", self.fc2.weights(hidden, cout)))

"""`gated`: MambaOut's gated CNN block, i.e. the Mamba block without the SSM: a 1x1 conv to a gate and a
value, a depthwise conv on the value, SiLU(gate) * value, a 1x1 projection. Beside `ssm` in one space it
lets the search answer MambaOut's question: does the state-space scan pay for itself on this task and
device? Elastic expand ratio (hidden = width x expand) and kernel size."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import field_validator
from torch import Tensor, nn

from search_spaces.arch import LayerChoice
from search_spaces.blocks.base import Site, TokenBlock, entry_config, register_block, transition_counts
from search_spaces.counts import Counts, total
from search_spaces.dynamic import DynamicBatchNorm, DynamicConv, prefixed
from search_spaces.dynamic.linear import init_linear_
from search_spaces.spec import FamilyParams, odd_kernels, sorted_choices
from search_spaces.standalone import GatedCNNBlock
from search_spaces.walk import Placement


class GatedLayer(LayerChoice):
    type: Literal["gated"] = "gated"
    expand: int
    kernel: int


class GatedParams(FamilyParams):
    expands: list[int] = [1, 2]
    kernels: list[int] = [3, 7]

    _k = field_validator("kernels")(classmethod(lambda cls, v: odd_kernels(v, 3, 9)))

    _e = field_validator("expands")(classmethod(lambda cls, v: sorted_choices(v, "expands")))

    def options(self) -> dict[str, list]:
        return {"expand": self.expands, "kernel": self.kernels}


def count_gated(p: dict[str, Any], size: int) -> Counts:
    entry = transition_counts(p, size)
    size = entry[-1].size
    c, h, k, n = p["cout"], p["hidden"], p["kernel"], size ** p["dims"]
    dw_taps = k ** p["dims"]
    parts = [Counts(2 * c, 0, size),  # the batch norm
             Counts(c * 2 * h + 2 * h, n * c * 2 * h, size),  # fc1 (gate and value)
             Counts(h * dw_taps + h, n * h * dw_taps, size),  # depthwise conv
             Counts(h * c + c, n * h * c, size)]  # fc2
    return total(*entry, *parts, size=size)


@register_block("gated", choice=GatedLayer, params=GatedParams, static=GatedCNNBlock, count=count_gated,
                label="gated CNN (MambaOut)", colour="#fbcfe8")
class ElasticGatedCNN(TokenBlock):
    def __init__(self, site: Site):
        super().__init__(site)
        p: GatedParams = site.params
        c, d = site.cout, site.dims
        h = c * max(p.expands)
        self.norm = DynamicBatchNorm(c)
        # gate and value halves apart, so that each slices to the active hidden width
        self.fc1_weight = nn.Parameter(torch.empty(2, h, c, *(1,) * d))
        self.fc1_bias = nn.Parameter(torch.empty(2, h))
        for i in range(2):
            init_linear_(self.fc1_weight[i], self.fc1_bias[i], c)
        self.dw = DynamicConv(d, h, h, p.kernels, depthwise=True, bias=True)
        self.fc2 = DynamicConv(d, h, c, bias=True)

    def _fc1(self, c: int, h: int) -> dict[str, Tensor]:
        return {"weight": self.fc1_weight[:, :h, :c].reshape(2 * h, c, *self.fc1_weight.shape[3:]),
                "bias": self.fc1_bias[:, :h].reshape(2 * h)}

    def forward(self, x: Tensor, cout: int, layer: GatedLayer) -> Tensor:
        x = self.enter(x, cout)
        h = cout * layer.expand
        fc1 = self._fc1(cout, h)
        conv = torch.nn.functional.conv2d if self.site.dims == 2 else torch.nn.functional.conv1d
        gate, value = conv(self.norm(x), fc1["weight"], fc1["bias"]).chunk(2, dim=1)
        return x + self.fc2(torch.nn.functional.silu(gate) * self.dw(value, h, layer.kernel), cout)

    @staticmethod
    def static_config(at: Placement, layer: GatedLayer, params: GatedParams) -> dict[str, Any]:
        return entry_config(at) | {"hidden": at.cout * layer.expand, "kernel": layer.kernel}

    def weights(self, cin: int, cout: int, layer: GatedLayer) -> dict[str, Tensor]:
        h = cout * layer.expand
        return (self.entry_weights(cin, cout) | prefixed("norm", self.norm.weights(cout))
                | prefixed("fc1", self._fc1(cout, h)) | prefixed("dw", self.dw.weights(h, h, layer.kernel))
                | prefixed("fc2", self.fc2.weights(h, cout)))

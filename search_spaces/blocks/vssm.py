"""`vssm`: a visual state-space block in the line of Vision Mamba, VCMamba and EfficientVMamba: the
Mamba-2 style selective scan of `ssm`, run over the tokens in 1, 2 or 4 directions (row-major, reversed,
column-major, reversed), each direction with its own B / C / dt projection, causal conv and decay as in
Vision Mamba, and optionally in atrous order (EfficientVMamba's skip-sampled scan: tokens two apart are
neighbours in the scan). Elastic state size, expand, number of directions and atrous order; a layer with
k directions uses the first k directions' weights."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import field_validator
from torch import Tensor, nn

from search_spaces.arch import LayerChoice
from search_spaces.blocks.base import Site, TokenBlock, entry_config, register_block, transition_counts
from search_spaces.blocks.ssm import mamba_init, scan_macs
from search_spaces.counts import Counts, total
from search_spaces.dynamic import DynamicLayerNorm, prefixed
from search_spaces.dynamic.linear import init_linear_
from search_spaces.spec import FamilyParams, sorted_choices
from search_spaces.standalone import VisionSSMBlock, from_tokens, multi_scan_mix, to_tokens
from search_spaces.walk import Placement

MAX_DIRECTIONS = 4


class VisionSSMLayer(LayerChoice):
    type: Literal["vssm"] = "vssm"
    state: int
    expand: int
    directions: int
    atrous: bool


class VisionSSMParams(FamilyParams):
    states: list[int] = [8, 16]
    expands: list[int] = [1, 2]
    directions: list[int] = [2, 4]
    atrous: list[bool] = [False, True]
    head_dim: int = 8
    conv_kernel: int = 4
    chunk: int = 16

    _st = field_validator("states")(classmethod(lambda cls, v: sorted_choices(v, "states")))
    _ex = field_validator("expands")(classmethod(lambda cls, v: sorted_choices(v, "expands")))
    _at = field_validator("atrous")(classmethod(lambda cls, v: sorted_choices(v, "atrous")))

    @field_validator("directions")
    @classmethod
    def _directions(cls, v: list[int]) -> list[int]:
        if any(d not in (1, 2, 4) for d in v):
            raise ValueError(f"directions must be 1, 2 or 4, got {v}")
        return sorted_choices(v, "directions")

    def options(self) -> dict[str, list]:
        return {"state": self.states, "expand": self.expands, "directions": self.directions, "atrous": self.atrous}

    def check_width(self, width: int) -> str | None:
        bad = [e for e in self.expands if (width * e) % self.head_dim]
        return f"x vssm expand {bad[0]} must be a multiple of vssm head_dim {self.head_dim}" if bad else None


def count_vssm(p: dict[str, Any], size: int) -> Counts:
    entry = transition_counts(p, size)
    size = entry[-1].size
    c, e, n, hd, k = p["cout"], p["inner"], p["state"], p["head_dim"], p["conv_kernel"]
    h, length, dirs = e // hd, size ** p["dims"], p["directions"]
    per_direction = Counts(c * (2 * n + h) + e * k + e + 3 * h,
                           length * c * (2 * n + h) + length * e * k + scan_macs(length, e, n, hd, p["chunk"]), size)
    shared = Counts(2 * c + 2 * e * c + e * c, length * 2 * e * c + length * e * c, size)  # norm, in and out proj
    return total(*entry, shared, *[per_direction] * dirs, size=size)


@register_block("vssm", choice=VisionSSMLayer, params=VisionSSMParams, static=VisionSSMBlock, count=count_vssm,
                label="multi-direction ssm (Vision Mamba / VCMamba)", colour="#86efac", letter="v")
class ElasticVisionSSM(TokenBlock):
    def __init__(self, site: Site):
        super().__init__(site)
        p: VisionSSMParams = site.params
        c, d = site.cout, MAX_DIRECTIONS
        self.cfg = p
        inner_max = c * max(p.expands)
        heads_max, state_max = inner_max // p.head_dim, max(p.states)
        self.norm = DynamicLayerNorm(c)
        self.in_z = nn.Parameter(torch.empty(inner_max, c))
        self.in_x = nn.Parameter(torch.empty(inner_max, c))
        self.out_w = nn.Parameter(torch.empty(c, inner_max))
        # per direction: B, C and dt projections, causal conv, decay, step and skip
        self.in_B = nn.Parameter(torch.empty(d, state_max, c))
        self.in_C = nn.Parameter(torch.empty(d, state_max, c))
        self.in_dt = nn.Parameter(torch.empty(d, heads_max, c))
        self.conv_weight = nn.Parameter(torch.empty(d, inner_max, 1, p.conv_kernel))
        self.conv_bias = nn.Parameter(torch.empty(d, inner_max))
        for w in (self.in_z, self.in_x, *self.in_B, *self.in_C, *self.in_dt):
            init_linear_(w, None, c)
        init_linear_(self.out_w, None, inner_max)
        for i in range(d):
            init_linear_(self.conv_weight[i], self.conv_bias[i], p.conv_kernel)
        self.A_log, self.dt_bias = mamba_init(d, heads_max)
        self.D = nn.Parameter(torch.ones(d, heads_max))

    def _scan(self, i: int, cout: int, inner: int, heads: int, state: int) -> dict[str, Tensor]:
        return {
            "proj.weight": torch.cat([self.in_B[i, :state, :cout], self.in_C[i, :state, :cout],
                                      self.in_dt[i, :heads, :cout]]),
            "conv.weight": self.conv_weight[i, :inner], "conv.bias": self.conv_bias[i, :inner],
            "dt_bias": self.dt_bias[i, :heads], "A_log": self.A_log[i, :heads], "D": self.D[i, :heads],
        }

    def _mixer(self, cout: int, layer: VisionSSMLayer) -> dict[str, Tensor]:
        inner = cout * layer.expand
        heads = inner // self.cfg.head_dim
        w = {"in_proj.weight": torch.cat([self.in_z[:inner, :cout], self.in_x[:inner, :cout]]),
             "out_proj.weight": self.out_w[:cout, :inner]}
        for i in range(layer.directions):
            w |= prefixed(f"scans.{i}", self._scan(i, cout, inner, heads, layer.state))
        return w

    def forward(self, x: Tensor, cout: int, layer: VisionSSMLayer) -> Tensor:
        x = self.enter(x, cout)
        t = to_tokens(x)
        m = self._mixer(cout, layer)
        names = ("proj.weight", "conv.weight", "conv.bias", "dt_bias", "A_log", "D")
        scans = [tuple(m[f"scans.{i}.{n}"] for n in names) for i in range(layer.directions)]
        p = self.cfg
        t = t + multi_scan_mix(self.norm(t), x.shape[-1], x.dim() - 2, m["in_proj.weight"], scans,  # type: ignore[arg-type]
                               m["out_proj.weight"], layer.state, p.head_dim, p.chunk, layer.atrous)
        return from_tokens(t, x)

    @staticmethod
    def static_config(at: Placement, layer: VisionSSMLayer, params: VisionSSMParams) -> dict[str, Any]:
        return entry_config(at) | {
            "inner": at.cout * layer.expand, "state": layer.state, "head_dim": params.head_dim,
            "conv_kernel": params.conv_kernel, "chunk": params.chunk, "directions": layer.directions,
            "atrous": layer.atrous,
        }

    def weights(self, cin: int, cout: int, layer: VisionSSMLayer) -> dict[str, Tensor]:
        return self.entry_weights(cin, cout) | prefixed("norm", self.norm.weights(cout)) | self._mixer(cout, layer)

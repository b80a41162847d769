"""`ssm`: a Mamba-2 style selective state-space block with elastic state size and expand.

in-projection -> causal depthwise conv -> selective scan with input-dependent step -> SiLU gate
-> out-projection, pre-norm with a residual. Image tokens are scanned in both directions.
The in-projection's parts (z, x, B, C, dt) are separate max-size weights so that each slices on
its own; the static layer holds them concatenated.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import field_validator
from torch import Tensor, nn

from search_spaces.arch import LayerChoice
from search_spaces.blocks.base import Site, TokenBlock, entry_config, register_block, transition_counts
from search_spaces.counts import Counts, total
from search_spaces.dynamic import DynamicLayerNorm, prefixed
from search_spaces.dynamic.linear import init_linear_
from search_spaces.spec import FamilyParams, sorted_choices
from search_spaces.standalone import SSMBlock, from_tokens, ssm_mix, to_tokens
from search_spaces.walk import Placement


class SSMLayer(LayerChoice):
    type: Literal["ssm"] = "ssm"
    state: int
    expand: int


class SSMParams(FamilyParams):
    states: list[int] = [8, 16]
    expands: list[int] = [1, 2]
    head_dim: int = 8
    conv_kernel: int = 4
    chunk: int = 16
    bidirectional: bool = True  # images are scanned in both directions

    _st = field_validator("states")(classmethod(lambda cls, v: sorted_choices(v, "states")))
    _ex = field_validator("expands")(classmethod(lambda cls, v: sorted_choices(v, "expands")))

    def options(self) -> dict[str, list]:
        return {"state": self.states, "expand": self.expands}

    def check_width(self, width: int) -> str | None:
        bad = [e for e in self.expands if (width * e) % self.head_dim]
        return f"x ssm expand {bad[0]} must be a multiple of ssm head_dim {self.head_dim}" if bad else None


def scan_macs(length: int, inner: int, state: int, head_dim: int, chunk: int) -> int:
    """MACs of one chunked selective scan (standalone.chunked_scan) over `length` tokens."""
    h, q = inner // head_dim, chunk
    chunks = math.ceil(length / q)
    macs = chunks * (q * q * state + h * q * q * head_dim)  # within chunks
    if chunks > 1:  # chunk states, the state carried between chunks, and its contribution
        macs += chunks * 2 * q * state * h * head_dim + chunks * chunks * h * head_dim * state
    return macs


def count_ssm(p: dict[str, Any], size: int) -> Counts:
    entry = transition_counts(p, size)
    size = entry[-1].size
    c, e, n, hd, k = p["cout"], p["inner"], p["state"], p["head_dim"], p["conv_kernel"]
    h = e // hd
    length = size ** p["dims"]
    per_direction = length * e * k + scan_macs(length, e, n, hd, p["chunk"])
    directions = 2 if p["bidirectional"] else 1
    params = 2 * c + c * (2 * e + 2 * n + h) + e * k + e + 3 * h + e * c
    macs = length * c * (2 * e + 2 * n + h) + directions * per_direction + length * e * c
    return total(*entry, Counts(params, macs, size), size=size)


def mamba_init(*shape: int) -> tuple[nn.Parameter, nn.Parameter]:
    """Mamba's initialisation of (A_log, dt_bias): decay rates A in [1, 16], step sizes dt in [1e-3, 1e-1]
    (dt_bias is their inverse softplus)."""
    A_log = torch.log(torch.empty(shape).uniform_(1, 16))
    dt = torch.exp(torch.empty(shape).uniform_(math.log(1e-3), math.log(1e-1)))
    return nn.Parameter(A_log), nn.Parameter(dt + torch.log(-torch.expm1(-dt)))


def sequential_scan(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
    """Step-by-step reference of standalone.chunked_scan (same arguments and shapes)."""
    b, length, h, p = x.shape
    state = x.new_zeros(b, h, p, B.shape[-1])  # (b, H, P, N)
    ys = []
    for t in range(length):
        decay = torch.exp(dt[:, t] * A)[:, :, None, None]
        state = decay * state + (dt[:, t, :, None] * x[:, t])[..., None] * B[:, t, None, None, :]
        ys.append(torch.einsum("bhpn,bn->bhp", state, C[:, t]))
    return torch.stack(ys, dim=1)


@register_block("ssm", choice=SSMLayer, params=SSMParams, static=SSMBlock, count=count_ssm,
                label="ssm (Mamba-2 style)", colour="#bbf7d0")
class ElasticSSM(TokenBlock):
    def __init__(self, site: Site):
        super().__init__(site)
        p = site.params
        c = site.cout
        self.cfg = p
        inner_max = c * max(p.expands)
        heads_max = inner_max // p.head_dim
        state_max = max(p.states)
        self.norm = DynamicLayerNorm(c)
        self.in_z = nn.Parameter(torch.empty(inner_max, c))
        self.in_x = nn.Parameter(torch.empty(inner_max, c))
        self.in_B = nn.Parameter(torch.empty(state_max, c))
        self.in_C = nn.Parameter(torch.empty(state_max, c))
        self.in_dt = nn.Parameter(torch.empty(heads_max, c))
        for w in (self.in_z, self.in_x, self.in_B, self.in_C, self.in_dt):
            init_linear_(w, None, c)
        self.conv_weight = nn.Parameter(torch.empty(inner_max, 1, p.conv_kernel))
        self.conv_bias = nn.Parameter(torch.empty(inner_max))
        init_linear_(self.conv_weight, self.conv_bias, p.conv_kernel)
        self.A_log, self.dt_bias = mamba_init(heads_max)
        self.D = nn.Parameter(torch.ones(heads_max))
        self.out_w = nn.Parameter(torch.empty(c, inner_max))
        init_linear_(self.out_w, None, inner_max)

    def _sizes(self, cout: int, layer: SSMLayer) -> tuple[int, int]:
        inner = cout * layer.expand
        return inner, inner // self.cfg.head_dim

    def _mixer(self, cout: int, layer: SSMLayer) -> dict[str, Tensor]:
        inner, heads = self._sizes(cout, layer)
        n = layer.state
        return {
            "in_proj.weight": torch.cat(
                [self.in_z[:inner, :cout], self.in_x[:inner, :cout], self.in_B[:n, :cout], self.in_C[:n, :cout],
                 self.in_dt[:heads, :cout]]
            ),
            "conv.weight": self.conv_weight[:inner],
            "conv.bias": self.conv_bias[:inner],
            "dt_bias": self.dt_bias[:heads],
            "A_log": self.A_log[:heads],
            "D": self.D[:heads],
            "out_proj.weight": self.out_w[:cout, :inner],
        }

    def forward(self, x: Tensor, cout: int, layer: SSMLayer) -> Tensor:
        x = self.enter(x, cout)
        t = to_tokens(x)  # (B, L, C)
        m = self._mixer(cout, layer)
        p = self.cfg
        t = t + ssm_mix(
            self.norm(t), m["in_proj.weight"], m["conv.weight"], m["conv.bias"], m["dt_bias"], m["A_log"], m["D"],
            m["out_proj.weight"], layer.state, p.head_dim, p.chunk, p.bidirectional,
        )
        return from_tokens(t, x)

    @staticmethod
    def static_config(at: Placement, layer: SSMLayer, params: SSMParams) -> dict[str, Any]:
        return entry_config(at) | {
            "inner": at.cout * layer.expand, "state": layer.state, "head_dim": params.head_dim,
            "conv_kernel": params.conv_kernel, "chunk": params.chunk, "bidirectional": params.bidirectional,
        }

    def weights(self, cin: int, cout: int, layer: SSMLayer) -> dict[str, Tensor]:
        return self.entry_weights(cin, cout) | prefixed("norm", self.norm.weights(cout)) | self._mixer(cout, layer)

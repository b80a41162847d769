"""`ssm`: a Mamba-2 style selective state-space block with elastic state size and expand.

in-projection -> causal depthwise conv -> selective scan with input-dependent step -> SiLU gate
-> out-projection, pre-norm with a residual. Image tokens are scanned in both directions.
The in-projection's parts (z, x, B, C, dt) are separate max-size weights so that each slices on
its own; the static layer holds them concatenated.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from search_spaces.arch import SSMLayer
from search_spaces.blocks.base import Site, TokenBlock, register_block
from search_spaces.dynamic import DynamicLayerNorm, prefixed
from search_spaces.dynamic.linear import init_linear_
from search_spaces.standalone import from_tokens, ssm_mix, to_tokens


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


@register_block("ssm")
class ElasticSSM(TokenBlock):
    def __init__(self, site: Site):
        super().__init__(site)
        p = site.params.ssm
        c = site.cout_max
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
        # Mamba's initialisation: decay rates A in [1, 16], step sizes dt in [1e-3, 1e-1]
        self.A_log = nn.Parameter(torch.log(torch.empty(heads_max).uniform_(1, 16)))
        dt = torch.exp(torch.empty(heads_max).uniform_(math.log(1e-3), math.log(1e-1)))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
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

    def plan(self, cin: int, cout: int, layer: SSMLayer) -> dict[str, Any]:
        p = self.cfg
        return {"type": "ssm"} | self.entry_plan(cin, cout) | {
            "inner": cout * layer.expand, "state": layer.state, "head_dim": p.head_dim,
            "conv_kernel": p.conv_kernel, "chunk": p.chunk, "bidirectional": p.bidirectional,
        }

    def weights(self, cin: int, cout: int, layer: SSMLayer) -> dict[str, Tensor]:
        return self.entry_weights(cin, cout) | prefixed("norm", self.norm.weights(cout)) | self._mixer(cout, layer)

"""Plain PyTorch layers of an extracted (static) network.

This file imports torch only: `HybridSupernet.extract` builds networks from these classes and
the exporter copies the file verbatim into a standalone `model.py`. The token mixers
(`attention_mix`, `ssm_mix`) are pure functions that the supernet's elastic blocks call with
sliced weights, so a supernet subnet and its extracted network run the same code.

Layout: images are (B, C, H, W), sequences (B, C, L); token blocks work on (B, N, C).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_nd(dims: int, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False):
    cls = nn.Conv2d if dims == 2 else nn.Conv1d
    return cls(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=bias)


def norm_nd(dims: int, channels: int):
    return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)


def to_tokens(x: Tensor) -> Tensor:
    return x.flatten(2).transpose(1, 2)  # (B, C, *S) -> (B, N, C)


def from_tokens(t: Tensor, like: Tensor) -> Tensor:
    return t.transpose(1, 2).reshape(like.shape)  # (B, N, C) -> (B, C, *S)


# ---- the selective scan ---------------------------------------------------------------------
def _masked_decay(log_decay: Tensor, strict: bool) -> Tensor:
    """Decay from step j to step i: exp(sum of log_decay over j+1..i) for j <= i, 0 elsewhere.

    With strict=True the sum runs over j+1..i-1 and only j < i is kept (state entering step i).
    log_decay: (..., T, H), all <= 0. Returns (..., H, T_i, T_j)."""
    cum = torch.cumsum(log_decay, dim=-2)
    rows = cum - log_decay if strict else cum
    diff = rows.transpose(-1, -2).unsqueeze(-1) - cum.transpose(-1, -2).unsqueeze(-2)
    t = log_decay.shape[-2]
    idx = torch.arange(t, device=log_decay.device)
    keep = idx.unsqueeze(1) > idx.unsqueeze(0) if strict else idx.unsqueeze(1) >= idx.unsqueeze(0)
    # mask before exp: above the diagonal the difference is positive and could overflow
    return torch.exp(torch.where(keep, diff, torch.full_like(diff, float("-inf"))))


def chunked_scan(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int) -> Tensor:
    """Selective state-space scan (Mamba-2 SSD form), computed chunk by chunk.

    h_t = exp(dt_t * A) h_{t-1} + dt_t * x_t B_t^T,   y_t = h_t C_t
    x: (b, L, H, P)  dt: (b, L, H) > 0  A: (H,) < 0  B, C: (b, L, N)  ->  y: (b, L, H, P)
    Plain tensor ops only (cumsum, einsum, exp), so it exports to ONNX.
    """
    b, length, h, p = x.shape
    n = B.shape[-1]
    pad = (-length) % chunk  # zero padding at the end leaves earlier outputs untouched
    if pad:
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        dt = F.pad(dt, (0, 0, 0, pad))
        B = F.pad(B, (0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, pad))
    nc = (length + pad) // chunk
    x = x.reshape(b, nc, chunk, h, p)
    dt = dt.reshape(b, nc, chunk, h)
    B = B.reshape(b, nc, chunk, n)
    C = C.reshape(b, nc, chunk, n)
    log_decay = dt * A  # (b, c, Q, H)
    x_dt = x * dt.unsqueeze(-1)  # (b, c, Q, H, P)

    # 1. within each chunk: y_i = sum_{j<=i} (C_i . B_j) exp(cum_i - cum_j) dt_j x_j
    scores = torch.einsum("bcin,bcjn->bcij", C, B)  # (b, c, Q, Q)
    mix = scores.unsqueeze(2) * _masked_decay(log_decay, strict=False)  # (b, c, H, Q, Q)
    y = torch.einsum("bchij,bcjhp->bcihp", mix, x_dt)
    if nc == 1:  # a single chunk starts from the zero state: nothing carries over
        return y.reshape(b, chunk, h, p)[:, :length]

    # 2. the state each chunk adds, decayed to the chunk's end
    cum = torch.cumsum(log_decay, dim=2)  # (b, c, Q, H)
    to_end = torch.exp(cum[:, :, -1:, :] - cum)  # (b, c, Q, H)
    states = torch.einsum("bcjn,bcjhp->bchpn", B, x_dt * to_end.unsqueeze(-1))  # (b, c, H, P, N)

    # 3. the state entering each chunk: decayed sum of the states of all earlier chunks
    chunk_decay = cum[:, :, -1, :]  # (b, c, H)
    entering = torch.einsum("bhde,behpn->bdhpn", _masked_decay(chunk_decay, strict=True), states)

    # 4. the entering state's contribution inside each chunk
    y = y + torch.einsum("bcin,bchpn->bcihp", C, entering) * torch.exp(cum).unsqueeze(-1)
    return y.reshape(b, nc * chunk, h, p)[:, :length]


# ---- functions shared with the supernet's elastic blocks ---------------------------------------
def squeeze_excite(x: Tensor, reduce_w: Tensor, reduce_b: Tensor, expand_w: Tensor, expand_b: Tensor) -> Tensor:
    s = torch.sigmoid(F.linear(F.silu(F.linear(x.flatten(2).mean(-1), reduce_w, reduce_b)), expand_w, expand_b))
    return x * s.reshape(s.shape + (1,) * (x.dim() - 2))  # s: (B, C) gates per channel


def resize(x: Tensor, size: int, dims: int) -> Tensor:
    mode = "bilinear" if dims == 2 else "linear"
    return F.interpolate(x, size=(size,) * dims, mode=mode, align_corners=False)


def attention_mix(t: Tensor, qkv_w: Tensor, qkv_b: Tensor, proj_w: Tensor, proj_b: Tensor, head_dim: int) -> Tensor:
    """Multi-head self-attention on (B, N, C) tokens; the head count follows from qkv_w."""
    b, n, _ = t.shape
    heads = qkv_w.shape[0] // (3 * head_dim)
    qkv = F.linear(t, qkv_w, qkv_b).reshape(b, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, N, d)
    y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, H, N, d)
    return F.linear(y.transpose(1, 2).reshape(b, n, heads * head_dim), proj_w, proj_b)


def ssm_mix(
    u: Tensor,
    in_w: Tensor,
    conv_w: Tensor,
    conv_b: Tensor,
    dt_bias: Tensor,
    A_log: Tensor,
    D: Tensor,
    out_w: Tensor,
    state: int,
    head_dim: int,
    chunk: int,
    bidirectional: bool,
) -> Tensor:
    """Mamba-2 style mixer on (B, L, C) tokens: in-proj, causal depthwise conv, selective scan, gate."""
    heads = dt_bias.shape[0]
    inner = heads * head_dim
    z, xs, Bm, Cm, dt = torch.split(F.linear(u, in_w), [inner, inner, state, state, heads], dim=-1)
    A = -torch.exp(A_log)  # (H,) negative: the state decays
    y = _ssm_direction(xs, Bm, Cm, dt, conv_w, conv_b, dt_bias, A, D, head_dim, chunk)
    if bidirectional:
        back = _ssm_direction(
            xs.flip(1), Bm.flip(1), Cm.flip(1), dt.flip(1), conv_w, conv_b, dt_bias, A, D, head_dim, chunk
        )
        y = y + back.flip(1)
    return F.linear(y * F.silu(z), out_w)


def _ssm_direction(xs, Bm, Cm, dt, conv_w, conv_b, dt_bias, A, D, head_dim: int, chunk: int) -> Tensor:
    b, length, inner = xs.shape
    k = conv_w.shape[-1]
    xc = F.conv1d(F.pad(xs.transpose(1, 2), (k - 1, 0)), conv_w, conv_b, groups=inner)  # causal, (B, E, L)
    xs = F.silu(xc).transpose(1, 2).reshape(b, length, inner // head_dim, head_dim)  # (B, L, H, P)
    dt = F.softplus(dt + dt_bias)  # (B, L, H)
    y = chunked_scan(xs, dt, A, Bm, Cm, chunk) + xs * D.unsqueeze(-1)
    return y.reshape(b, length, inner)


# ---- layers ---------------------------------------------------------------------------------------
class ConvNormAct(nn.Module):
    def __init__(self, dims: int, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = conv_nd(dims, cin, cout, kernel, stride, groups)
        self.norm = norm_nd(dims, cout)
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(self.conv(x))
        return F.silu(x) if self.act else x


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.reduce = nn.Linear(channels, hidden)
        self.expand = nn.Linear(hidden, channels)

    def forward(self, x: Tensor) -> Tensor:
        return squeeze_excite(x, self.reduce.weight, self.reduce.bias, self.expand.weight, self.expand.bias)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, optional squeeze-excite, 1x1 project."""

    def __init__(self, dims: int, cin: int, cout: int, mid: int, kernel: int, stride: int, se_hidden: int):
        super().__init__()
        self.expand = ConvNormAct(dims, cin, mid)
        self.depthwise = ConvNormAct(dims, mid, mid, kernel, stride, groups=mid)
        self.se = SqueezeExcite(mid, se_hidden) if se_hidden else None
        self.project = ConvNormAct(dims, mid, cout, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.depthwise(self.expand(x))
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.residual else y


class Transition(nn.Module):
    """Entry of a token block that starts a stage: strided depthwise 3x3, then a 1x1 projection."""

    def __init__(self, dims: int, cin: int, cout: int, stride: int):
        super().__init__()
        self.depthwise = ConvNormAct(dims, cin, cin, 3, stride, groups=cin, act=False)
        self.pointwise = ConvNormAct(dims, cin, cout, act=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))


class AttentionBlock(nn.Module):
    """Conv position encoding, pre-norm multi-head self-attention, pre-norm MLP."""

    def __init__(self, dims: int, cin: int, cout: int, stride: int, transition: bool, heads: int, head_dim: int, mlp_hidden: int):
        super().__init__()
        self.transition = Transition(dims, cin, cout, stride) if transition else None
        self.pos = conv_nd(dims, cout, cout, 3, groups=cout, bias=True)
        self.norm1 = nn.LayerNorm(cout)
        self.qkv = nn.Linear(cout, 3 * heads * head_dim)
        self.proj = nn.Linear(heads * head_dim, cout)
        self.norm2 = nn.LayerNorm(cout)
        self.fc1 = nn.Linear(cout, mlp_hidden)
        self.fc2 = nn.Linear(mlp_hidden, cout)
        self.head_dim = head_dim

    def forward(self, x: Tensor) -> Tensor:
        if self.transition is not None:
            x = self.transition(x)
        x = x + self.pos(x)
        t = to_tokens(x)
        t = t + attention_mix(self.norm1(t), self.qkv.weight, self.qkv.bias, self.proj.weight, self.proj.bias, self.head_dim)
        t = t + self.fc2(F.gelu(self.fc1(self.norm2(t))))
        return from_tokens(t, x)


class SSMBlock(nn.Module):
    """Pre-norm Mamba-2 style selective state-space mixer with a residual connection."""

    def __init__(
        self, dims: int, cin: int, cout: int, stride: int, transition: bool, inner: int, state: int,
        head_dim: int, conv_kernel: int, chunk: int, bidirectional: bool,
    ):
        super().__init__()
        heads = inner // head_dim
        self.transition = Transition(dims, cin, cout, stride) if transition else None
        self.norm = nn.LayerNorm(cout)
        self.in_proj = nn.Linear(cout, 2 * inner + 2 * state + heads, bias=False)
        self.conv = nn.Conv1d(inner, inner, conv_kernel, groups=inner)
        self.dt_bias = nn.Parameter(torch.zeros(heads))
        self.A_log = nn.Parameter(torch.zeros(heads))
        self.D = nn.Parameter(torch.ones(heads))
        self.out_proj = nn.Linear(inner, cout, bias=False)
        self.state, self.head_dim, self.chunk, self.bidirectional = state, head_dim, chunk, bidirectional

    def forward(self, x: Tensor) -> Tensor:
        if self.transition is not None:
            x = self.transition(x)
        t = to_tokens(x)
        t = t + ssm_mix(
            self.norm(t), self.in_proj.weight, self.conv.weight, cast(Tensor, self.conv.bias), self.dt_bias, self.A_log,
            self.D, self.out_proj.weight, self.state, self.head_dim, self.chunk, self.bidirectional,
        )
        return from_tokens(t, x)


class Head(nn.Module):
    """Optional 1x1 feature layer, global average pool, dropout, linear classifier."""

    def __init__(self, dims: int, cin: int, width: int, num_classes: int, dropout: float):
        super().__init__()
        self.features = ConvNormAct(dims, cin, width) if width else None
        self.dropout = dropout
        self.classifier = nn.Linear(width or cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if self.features is not None:
            x = self.features(x)
        x = F.dropout(x.flatten(2).mean(-1), self.dropout, self.training)  # (B, C)
        return self.classifier(x)


class Resize(nn.Module):
    """Resamples inputs to an arch's resolution (images: bilinear, sequences: linear)."""

    def __init__(self, dims: int, size: int):
        super().__init__()
        self.dims, self.size = dims, size

    def forward(self, x: Tensor) -> Tensor:
        return resize(x, self.size, self.dims)


class Normalize(nn.Module):
    """Input normalization folded into the model: (x - mean) / std per channel."""

    mean: Tensor
    std: Tensor

    def __init__(self, dims: int, mean: list[float], std: list[float]):
        super().__init__()
        shape = (len(mean),) + (1,) * dims
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(shape))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(shape))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def _stem(dims: int, cin: int, cout: int, kernel: int, stride: int) -> ConvNormAct:
    return ConvNormAct(dims, cin, cout, kernel, stride)


LAYERS: dict[str, Callable[..., nn.Module]] = {
    "normalize": Normalize,
    "resize": Resize,
    "stem": _stem,
    "conv": MBConv,
    "attention": AttentionBlock,
    "ssm": SSMBlock,
    "head": Head,
}


class Network(nn.Sequential):
    """A static network built from a plan: a list of {"type": ..., **constructor arguments}."""

    def __init__(self, plan: list[dict]):
        super().__init__(*[LAYERS[p["type"]](**{k: v for k, v in p.items() if k != "type"}) for p in plan])
        self.plan = plan

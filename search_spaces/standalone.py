"""Plain PyTorch layers of an extracted (static) network.

This file imports torch only: `HybridSupernet.extract` builds networks from these classes and
the exporter copies the file verbatim into a standalone `model.py`. The token mixers
(`attention_mix`, `ssm_mix`) are pure functions that the supernet's elastic blocks call with
sliced weights, so a supernet subnet and its extracted network run the same code.

Layout: images are (B, C, H, W), sequences (B, C, L); token blocks work on (B, N, C).
"""

from __future__ import annotations

import functools
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


def conv_projection(t: Tensor, like: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """CvT's convolutional projection: a depthwise conv over the token map with three outputs per channel,
    one each for q, k and v. (B, N, C) tokens of the map `like` -> (B, N, 3, C)."""
    b, n, c = t.shape
    conv = F.conv2d if like.dim() == 4 else F.conv1d
    y = conv(from_tokens(t, like), weight, bias, 1, weight.shape[-1] // 2, 1, c)  # (B, 3C, *S)
    return y.reshape(b, c, 3, n).permute(0, 3, 2, 1)


def qkv_project(t: Tensor, qkv_w: Tensor, qkv_b: Tensor) -> Tensor:
    """q, k and v of (B, N, C) tokens, or of (B, N, 3, C) per-part inputs (a conv projection): (B, N, 3 * inner)."""
    if t.dim() == 3:
        return F.linear(t, qkv_w, qkv_b)
    parts = qkv_w.reshape(3, -1, t.shape[-1])  # (3, inner, C)
    return torch.einsum("bnpc,pic->bnpi", t, parts).flatten(2) + qkv_b


def attention_mix(t: Tensor, qkv_w: Tensor, qkv_b: Tensor, proj_w: Tensor, proj_b: Tensor, head_dim: int) -> Tensor:
    """Multi-head self-attention on (B, N, C) tokens (or conv-projected (B, N, 3, C)); the head count
    follows from qkv_w."""
    b, n = t.shape[:2]
    heads = qkv_w.shape[0] // (3 * head_dim)
    qkv = qkv_project(t, qkv_w, qkv_b).reshape(b, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, N, d)
    y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, H, N, d)
    return F.linear(y.transpose(1, 2).reshape(b, n, heads * head_dim), proj_w, proj_b)


def window_partition(t: Tensor, side: int, dims: int, window: int, grid: bool) -> tuple[Tensor, int]:
    """(B, N, D) tokens of a side**dims map -> (B * groups, window**dims, D) groups of tokens, and the padded side.

    The map is zero-padded to a multiple of `window`. Windows (MaxViT block attention) group neighbouring
    tokens; grid groups (MaxViT grid attention) take every (side / window)-th token, a dilated global mix."""
    b, _, d = t.shape
    w = min(window, side)
    padded = -(-side // w) * w
    x = t.reshape(b, *(side,) * dims, d)
    pad = padded - side
    if pad:
        x = F.pad(x, (0, 0, 0, pad) if dims == 1 else (0, 0, 0, pad, 0, pad))
    g = padded // w
    if dims == 1:
        x = x.reshape(b, w, g, d).transpose(1, 2) if grid else x.reshape(b, g, w, d)
        return x.reshape(b * g, w, d), padded
    if grid:  # (B, w, g, w, g, D): a group holds the tokens that share (row mod g, col mod g)
        x = x.reshape(b, w, g, w, g, d).permute(0, 2, 4, 1, 3, 5)
    else:  # (B, g, w, g, w, D): a group is a w x w window
        x = x.reshape(b, g, w, g, w, d).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b * g * g, w * w, d), padded


def window_merge(groups: Tensor, b: int, side: int, padded: int, dims: int, window: int, grid: bool) -> Tensor:
    """The inverse of window_partition: (B * groups, window**dims, D) -> (B, side**dims, D)."""
    d = groups.shape[-1]
    w = min(window, side)
    g = padded // w
    if dims == 1:
        x = groups.reshape(b, g, w, d)
        x = x.transpose(1, 2).reshape(b, padded, d) if grid else x.reshape(b, padded, d)
        return x[:, :side]
    x = groups.reshape(b, g, g, w, w, d)
    x = x.permute(0, 3, 1, 4, 2, 5) if grid else x.permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, padded, padded, d)[:, :side, :side].reshape(b, side * side, d)


def window_attention_mix(
    t: Tensor, side: int, dims: int, qkv_w: Tensor, qkv_b: Tensor, proj_w: Tensor, proj_b: Tensor, head_dim: int,
    window: int, grid: bool,
) -> Tensor:
    """Multi-head self-attention within windows (or grid groups) of (B, N, C) tokens (or conv-projected
    (B, N, 3, C)); cost linear in N."""
    b = t.shape[0]
    heads = qkv_w.shape[0] // (3 * head_dim)
    groups, padded = window_partition(qkv_project(t, qkv_w, qkv_b), side, dims, window, grid)  # zero q, k, v in padding
    m = groups.shape[1]
    qkv = groups.reshape(-1, m, 3, heads, head_dim).permute(2, 0, 3, 1, 4)  # (3, B*G, H, m, d)
    y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(-1, m, heads * head_dim)
    return F.linear(window_merge(y, b, side, padded, dims, window, grid), proj_w, proj_b)


def long_conv_kernel(sub_kernels: Tensor, length: int) -> Tensor:
    """SGConv's global kernel: sub-kernel i (C, d), stretched to d * 2**i taps and scaled by 2**-i, concatenated
    and cut (or zero-padded) to `length` taps. sub_kernels: (C, S, d) -> (C, length)."""
    c, scales, d = sub_kernels.shape
    parts = [F.interpolate(sub_kernels[:, i : i + 1, :], scale_factor=2**i, mode="linear", align_corners=False)[:, 0]
             * 0.5**i for i in range(scales)]
    kernel = torch.cat(parts, dim=-1)
    if kernel.shape[-1] >= length:
        return kernel[:, :length]
    return F.pad(kernel, (0, length - kernel.shape[-1]))


def long_conv(u: Tensor, kernel: Tensor, D: Tensor) -> Tensor:
    """Causal depthwise convolution of (B, L, C) tokens with a (C, L) kernel, plus a skip D * u; as a plain
    convolution (what ONNX runs; the supernet computes the same by FFT, see `long_conv_fft`)."""
    length = u.shape[1]
    x = F.pad(u.transpose(1, 2), (length - 1, 0))
    y = F.conv1d(x, kernel.flip(-1).unsqueeze(1), groups=kernel.shape[0])
    return y.transpose(1, 2) + u * D


def long_conv_fft(u: Tensor, kernel: Tensor, D: Tensor) -> Tensor:
    """`long_conv` computed by FFT in O(L log L): the same result up to float rounding."""
    length = u.shape[1]
    spectrum = torch.fft.rfft(u.transpose(1, 2), n=2 * length) * torch.fft.rfft(kernel, n=2 * length)
    return torch.fft.irfft(spectrum, n=2 * length)[..., :length].transpose(1, 2) + u * D


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


@functools.lru_cache(maxsize=256)
def scan_order(side: int, dims: int, direction: int, atrous: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The token order of scan `direction` over a side**dims map, and its inverse permutation.

    Directions: 0 row-major, 1 its reverse, 2 column-major, 3 its reverse (a sequence has no columns:
    2 and 3 scan it as 0 and 1 do). Atrous (EfficientVMamba): the scan visits the tokens of even rows and
    columns first, then the other parities, so consecutive steps are two tokens apart. Plain Python, so
    the orders are constants in traced and exported graphs."""
    positions = [divmod(p, side) for p in range(side**dims)] if dims == 2 else [(0, p) for p in range(side)]

    def key(p: int) -> tuple[int, ...]:
        i, j = positions[p]
        parity = (i % 2, j % 2) if atrous else (0, 0)
        return parity + ((j, i) if direction >= 2 else (i, j))

    order = sorted(range(len(positions)), key=key)
    if direction % 2:
        order.reverse()
    inverse = [0] * len(order)
    for rank, p in enumerate(order):
        inverse[p] = rank
    return tuple(order), tuple(inverse)


def multi_scan_mix(
    u: Tensor, side: int, dims: int, in_w: Tensor, scans: list[tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]],
    out_w: Tensor, state: int, head_dim: int, chunk: int, atrous: bool,
) -> Tensor:
    """Vision-Mamba style mixer on (B, L, C) tokens: a shared in-projection to gate z and input x, then one
    selective scan per direction, each with its own B / C / dt projection, causal conv and decay (scans:
    [(proj_w, conv_w, conv_b, dt_bias, A_log, D), ...]), summed in token order, gated and projected."""
    inner = in_w.shape[0] // 2
    z, xs = torch.split(F.linear(u, in_w), [inner, inner], dim=-1)
    y = torch.zeros_like(xs)
    for direction, (proj_w, conv_w, conv_b, dt_bias, A_log, D) in enumerate(scans):
        # int(): under torch.jit.trace a size is a traced tensor; the orders depend on the (fixed) map size
        orders = scan_order(int(side), dims, direction, atrous)
        order, inverse = (torch.tensor(o, device=u.device) for o in orders)
        Bm, Cm, dt = torch.split(F.linear(u, proj_w)[:, order], [state, state, dt_bias.shape[0]], dim=-1)
        scanned = _ssm_direction(xs[:, order], Bm, Cm, dt, conv_w, conv_b, dt_bias, -torch.exp(A_log), D,
                                 head_dim, chunk)
        y = y + scanned[:, inverse]
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


def pool(x: Tensor, stride: int) -> Tensor:
    """Average pooling by `stride` to side (n - 1) // stride + 1: the input is zero-padded to a multiple of
    the stride first (no ceil_mode, whose edge windows runtimes average differently)."""
    if stride == 1:
        return x
    pad = (-x.shape[-1]) % stride
    if pad:
        x = F.pad(x, (0, pad) * (x.dim() - 2))
    return F.avg_pool2d(x, stride) if x.dim() == 4 else F.avg_pool1d(x, stride)


class Downsample(nn.Module):
    """A stage's searchable transition (to its width, by its stride): `conv`, a strided depthwise 3x3 and a 1x1
    projection (MobileNet / EfficientViT); `embed`, one strided full 3x3 conv (an overlapping patch
    embedding, CvT / MaxViT); `pool`, average pooling and a 1x1 projection (PoolFormer-style)."""

    def __init__(self, dims: int, cin: int, cout: int, kind: str, stride: int):
        super().__init__()
        self.kind, self.stride = kind, stride
        if kind == "conv":
            self.depthwise = ConvNormAct(dims, cin, cin, 3, stride, groups=cin, act=False)
        if kind == "embed":
            self.embed = ConvNormAct(dims, cin, cout, 3, stride, act=False)
        else:
            self.pointwise = ConvNormAct(dims, cin, cout, act=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "embed":
            return self.embed(x)
        x = self.depthwise(x) if self.kind == "conv" else pool(x, self.stride)
        return self.pointwise(x)


class AttentionBlock(nn.Module):
    """Conv position encoding, pre-norm multi-head self-attention (q, k, v from a linear or, with
    conv_qkv, CvT's convolutional projection), pre-norm MLP."""

    def __init__(self, dims: int, cin: int, cout: int, stride: int, transition: bool, heads: int, head_dim: int,
                 mlp_hidden: int, conv_qkv: bool = False):
        super().__init__()
        self.transition = Transition(dims, cin, cout, stride) if transition else None
        self.pos = conv_nd(dims, cout, cout, 3, groups=cout, bias=True)
        self.norm1 = nn.LayerNorm(cout)
        self.qkv_conv = conv_nd(dims, cout, 3 * cout, 3, groups=cout, bias=True) if conv_qkv else None
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
        u = self.norm1(t)
        if self.qkv_conv is not None:
            u = conv_projection(u, x, self.qkv_conv.weight, cast(Tensor, self.qkv_conv.bias))
        t = t + self.mix(u, x)
        t = t + self.fc2(F.gelu(self.fc1(self.norm2(t))))
        return from_tokens(t, x)

    def mix(self, t: Tensor, x: Tensor) -> Tensor:
        """The token mixer on normalized tokens `t` of the map `x`: global attention here."""
        return attention_mix(t, self.qkv.weight, self.qkv.bias, self.proj.weight, self.proj.bias, self.head_dim)


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


class FusedMBConv(nn.Module):
    """Fused inverted residual (EfficientNetV2): a full kxk expansion conv (strided), then a 1x1 projection."""

    def __init__(self, dims: int, cin: int, cout: int, mid: int, kernel: int, stride: int):
        super().__init__()
        self.expand = ConvNormAct(dims, cin, mid, kernel, stride)
        self.project = ConvNormAct(dims, mid, cout, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.expand(x))
        return x + y if self.residual else y


class GatedCNNBlock(nn.Module):
    """MambaOut's gated CNN block: the Mamba block without its SSM. Pre-norm, a 1x1 conv to a gate and a
    value, a depthwise kxk conv on the value, SiLU(gate) * value, a 1x1 projection, a residual."""

    def __init__(self, dims: int, cin: int, cout: int, stride: int, transition: bool, hidden: int, kernel: int):
        super().__init__()
        self.transition = Transition(dims, cin, cout, stride) if transition else None
        self.norm = norm_nd(dims, cout)
        self.fc1 = conv_nd(dims, cout, 2 * hidden, 1, bias=True)
        self.dw = conv_nd(dims, hidden, hidden, kernel, groups=hidden, bias=True)
        self.fc2 = conv_nd(dims, hidden, cout, 1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        if self.transition is not None:
            x = self.transition(x)
        gate, value = self.fc1(self.norm(x)).chunk(2, dim=1)
        return x + self.fc2(F.silu(gate) * self.dw(value))


class WindowAttentionBlock(AttentionBlock):
    """MaxViT's multi-axis attention, one axis per block: attention within local windows, or across a sparse
    grid (every (side / window)-th token); otherwise as AttentionBlock (position conv, MLP)."""

    def __init__(self, dims: int, cin: int, cout: int, stride: int, transition: bool, heads: int, head_dim: int,
                 mlp_hidden: int, window: int, grid: bool, conv_qkv: bool = False):
        super().__init__(dims, cin, cout, stride, transition, heads, head_dim, mlp_hidden, conv_qkv)
        self.window, self.grid = window, grid

    def mix(self, t: Tensor, x: Tensor) -> Tensor:
        return window_attention_mix(t, x.shape[-1], x.dim() - 2, self.qkv.weight, self.qkv.bias, self.proj.weight,
                                    self.proj.bias, self.head_dim, self.window, self.grid)


class LongConvBlock(nn.Module):
    """SGConv / S4D-style global convolution over the tokens (a kernel as long as the sequence, built from a
    few sub-kernels), gated by GELU and projected, then a pre-norm MLP."""

    def __init__(self, dims: int, cin: int, cout: int, stride: int, transition: bool, sub_kernel: int, scales: int,
                 mlp_hidden: int):
        super().__init__()
        self.transition = Transition(dims, cin, cout, stride) if transition else None
        self.norm1 = nn.LayerNorm(cout)
        self.sub_kernels = nn.Parameter(torch.zeros(cout, scales, sub_kernel))
        self.D = nn.Parameter(torch.ones(cout))
        self.out_proj = nn.Linear(cout, cout)
        self.norm2 = nn.LayerNorm(cout)
        self.fc1 = nn.Linear(cout, mlp_hidden)
        self.fc2 = nn.Linear(mlp_hidden, cout)

    def forward(self, x: Tensor) -> Tensor:
        if self.transition is not None:
            x = self.transition(x)
        t = to_tokens(x)
        kernel = long_conv_kernel(self.sub_kernels, t.shape[1])
        t = t + self.out_proj(F.gelu(long_conv(self.norm1(t), kernel, self.D)))
        t = t + self.fc2(F.gelu(self.fc1(self.norm2(t))))
        return from_tokens(t, x)


class ScanDirection(nn.Module):
    """One scan direction's own weights in a VisionSSMBlock."""

    def __init__(self, cout: int, inner: int, state: int, heads: int, conv_kernel: int):
        super().__init__()
        self.proj = nn.Linear(cout, 2 * state + heads, bias=False)  # B, C and dt
        self.conv = nn.Conv1d(inner, inner, conv_kernel, groups=inner)
        self.dt_bias = nn.Parameter(torch.zeros(heads))
        self.A_log = nn.Parameter(torch.zeros(heads))
        self.D = nn.Parameter(torch.ones(heads))

    def weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        return self.proj.weight, self.conv.weight, cast(Tensor, self.conv.bias), self.dt_bias, self.A_log, self.D


class VisionSSMBlock(nn.Module):
    """Pre-norm selective state-space mixer scanned in 1, 2 or 4 directions with separate weights per
    direction (Vision Mamba, VCMamba), optionally in atrous order (EfficientVMamba), with a residual."""

    def __init__(
        self, dims: int, cin: int, cout: int, stride: int, transition: bool, inner: int, state: int,
        head_dim: int, conv_kernel: int, chunk: int, directions: int, atrous: bool,
    ):
        super().__init__()
        self.transition = Transition(dims, cin, cout, stride) if transition else None
        self.norm = nn.LayerNorm(cout)
        self.in_proj = nn.Linear(cout, 2 * inner, bias=False)
        self.scans = nn.ModuleList(
            ScanDirection(cout, inner, state, inner // head_dim, conv_kernel) for _ in range(directions))
        self.out_proj = nn.Linear(inner, cout, bias=False)
        self.state, self.head_dim, self.chunk, self.atrous = state, head_dim, chunk, atrous

    def forward(self, x: Tensor) -> Tensor:
        if self.transition is not None:
            x = self.transition(x)
        t = to_tokens(x)
        scans = [cast(ScanDirection, s).weights() for s in self.scans]
        t = t + multi_scan_mix(self.norm(t), x.shape[-1], x.dim() - 2, self.in_proj.weight, scans,
                               self.out_proj.weight, self.state, self.head_dim, self.chunk, self.atrous)
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
    "downsample": Downsample,
    "conv": MBConv,
    "attention": AttentionBlock,
    "ssm": SSMBlock,
    "fused": FusedMBConv,
    "gated": GatedCNNBlock,
    "window": WindowAttentionBlock,
    "longconv": LongConvBlock,
    "vssm": VisionSSMBlock,
    "head": Head,
}


class Network(nn.Sequential):
    """A static network built from a plan: a list of {"type": ..., **constructor arguments}."""

    def __init__(self, plan: list[dict]):
        super().__init__(*[LAYERS[p["type"]](**{k: v for k, v in p.items() if k != "type"}) for p in plan])
        self.plan = plan

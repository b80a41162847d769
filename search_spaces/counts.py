"""Analytic parameter and MAC counts of the static layers in a network plan.

MACs count multiply-accumulates of convolutions, linear layers, attention and the scan's
contractions (norms, activations and element-wise ops are not counted), per input sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple


class Counts(NamedTuple):
    params: int
    macs: int
    size: int  # spatial side (image) or length (sequence) of the layer's output


def _conv_out(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # odd kernels, padding k // 2


def conv_norm(dims: int, cin: int, cout: int, kernel: int, stride: int, groups: int, size: int) -> Counts:
    out = _conv_out(size, stride)
    weights = cout * (cin // groups) * kernel**dims
    return Counts(weights + 2 * cout, weights * out**dims, out)


def _sum(*parts: Counts, size: int) -> Counts:
    return Counts(sum(p.params for p in parts), sum(p.macs for p in parts), size)


def _linear(cin: int, cout: int, tokens: int, bias: bool = True) -> Counts:
    return Counts(cin * cout + (cout if bias else 0), tokens * cin * cout, 0)


def _stem(p: dict[str, Any], size: int) -> Counts:
    return conv_norm(p["dims"], p["cin"], p["cout"], p["kernel"], p["stride"], 1, size)


def _conv(p: dict[str, Any], size: int) -> Counts:
    d, mid = p["dims"], p["mid"]
    expand = conv_norm(d, p["cin"], mid, 1, 1, 1, size)
    dw = conv_norm(d, mid, mid, p["kernel"], p["stride"], mid, size)
    se = [_linear(mid, p["se_hidden"], 1), _linear(p["se_hidden"], mid, 1)] if p["se_hidden"] else []
    project = conv_norm(d, mid, p["cout"], 1, 1, 1, dw.size)
    return _sum(expand, dw, *se, project, size=dw.size)


def _entry(p: dict[str, Any], size: int) -> list[Counts]:
    if not p["transition"]:
        return [Counts(0, 0, size)]
    dw = conv_norm(p["dims"], p["cin"], p["cin"], 3, p["stride"], p["cin"], size)
    return [dw, conv_norm(p["dims"], p["cin"], p["cout"], 1, 1, 1, dw.size)]


def _attention(p: dict[str, Any], size: int) -> Counts:
    entry = _entry(p, size)
    size = entry[-1].size
    c, d, inner, hidden = p["cout"], p["dims"], p["heads"] * p["head_dim"], p["mlp_hidden"]
    n = size**d  # tokens
    pos = Counts(c * 3**d + c, c * 3**d * n, size)
    norms = Counts(4 * c, 0, size)
    sdpa = Counts(0, 2 * n * n * inner, size)  # q k^T and attn v
    parts = [pos, norms, _linear(c, 3 * inner, n), sdpa, _linear(inner, c, n), _linear(c, hidden, n), _linear(hidden, c, n)]
    return _sum(*entry, *parts, size=size)


def _ssm(p: dict[str, Any], size: int) -> Counts:
    entry = _entry(p, size)
    size = entry[-1].size
    c, e, n, hd, k, q = p["cout"], p["inner"], p["state"], p["head_dim"], p["conv_kernel"], p["chunk"]
    h = e // hd
    length = size ** p["dims"]
    chunks = math.ceil(length / q)
    scan = chunks * (q * q * n + h * q * q * hd)  # within chunks
    if chunks > 1:  # chunk states, the state carried between chunks, and its contribution
        scan += chunks * 2 * q * n * h * hd + chunks * chunks * h * hd * n
    per_direction = length * e * k + scan
    directions = 2 if p["bidirectional"] else 1
    params = 2 * c + c * (2 * e + 2 * n + h) + e * k + e + 3 * h + e * c
    macs = length * c * (2 * e + 2 * n + h) + directions * per_direction + length * e * c
    return _sum(*entry, Counts(params, macs, size), size=size)


def _head(p: dict[str, Any], size: int) -> Counts:
    width, cin = p["width"], p["cin"]
    features = conv_norm(p["dims"], cin, width, 1, 1, 1, size) if width else Counts(0, 0, size)
    return _sum(features, _linear(width or cin, p["num_classes"], 1), size=size)


def _resize(p: dict[str, Any], size: int) -> Counts:
    return Counts(0, 0, p["size"])


def _free(p: dict[str, Any], size: int) -> Counts:
    return Counts(0, 0, size)


COUNTERS: dict[str, Callable[[dict[str, Any], int], Counts]] = {
    "normalize": _free, "resize": _resize, "stem": _stem, "conv": _conv,
    "attention": _attention, "ssm": _ssm, "head": _head,
}


def count_plan(plan: list[dict[str, Any]], input_size: int) -> Counts:
    """Total params and MACs of a network plan for inputs of side / length `input_size`."""
    params = macs = 0
    size = input_size
    for layer in plan:
        c = COUNTERS[layer["type"]](layer, size)
        params, macs, size = params + c.params, macs + c.macs, c.size
    return Counts(params, macs, size)

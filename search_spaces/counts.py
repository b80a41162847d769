"""Analytic parameter and MAC counts of static layers, summed over the walk of an arch.

MACs count multiply-accumulates of convolutions, linear layers, attention and the scan's
contractions (norms, activations and element-wise ops are not counted), per input sample. Each
block family registers its own counter; the fixed layers (resize, stem, head, normalize) are here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from search_spaces import registry
from search_spaces.walk import LayerSite, strided, walk

if TYPE_CHECKING:
    from search_spaces.arch import Arch
    from search_spaces.spec import SearchSpaceSpec


class Counts(NamedTuple):
    params: int
    macs: int
    size: int  # spatial side (image) or length (sequence) of the layer's output


def conv_norm(dims: int, cin: int, cout: int, kernel: int, stride: int, groups: int, size: int) -> Counts:
    """A convolution (no bias) followed by a batch norm."""
    out = strided(size, stride)
    weights = cout * (cin // groups) * kernel**dims
    return Counts(weights + 2 * cout, weights * out**dims, out)


def total(*parts: Counts, size: int) -> Counts:
    return Counts(sum(p.params for p in parts), sum(p.macs for p in parts), size)


def linear(cin: int, cout: int, tokens: int, bias: bool = True) -> Counts:
    return Counts(cin * cout + (cout if bias else 0), tokens * cin * cout, 0)


def _stem(p: dict[str, Any], size: int) -> Counts:
    return conv_norm(p["dims"], p["cin"], p["cout"], p["kernel"], p["stride"], 1, size)


def _head(p: dict[str, Any], size: int) -> Counts:
    width, cin = p["width"], p["cin"]
    features = conv_norm(p["dims"], cin, width, 1, 1, 1, size) if width else Counts(0, 0, size)
    return total(features, linear(width or cin, p["num_classes"], 1), size=size)


def _downsample(p: dict[str, Any], size: int) -> Counts:
    d, cin, cout, stride = p["dims"], p["cin"], p["cout"], p["stride"]
    if p["kind"] == "embed":
        return conv_norm(d, cin, cout, 3, stride, 1, size)
    first = conv_norm(d, cin, cin, 3, stride, cin, size) if p["kind"] == "conv" else Counts(0, 0, strided(size, stride))
    return total(first, conv_norm(d, cin, cout, 1, 1, 1, first.size), size=first.size)


def _resize(p: dict[str, Any], size: int) -> Counts:
    return Counts(0, 0, p["size"])


def _free(p: dict[str, Any], size: int) -> Counts:
    return Counts(0, 0, size)


FIXED_COUNTERS: dict[str, Callable[[dict[str, Any], int], Counts]] = {
    "normalize": _free, "resize": _resize, "stem": _stem, "downsample": _downsample, "head": _head,
}


def count_layer(config: dict[str, Any], input_size: int) -> Counts:
    """Params and MACs of one static layer for inputs of side / length `input_size`."""
    kind = config["type"]
    counter = FIXED_COUNTERS.get(kind) or registry.family(kind).count
    return counter(config, input_size)


def count_sites(sites: Iterable[LayerSite]) -> Counts:
    params = macs = size = 0
    for site in sites:
        c = count_layer(site.config, site.input_size)
        params, macs, size = params + c.params, macs + c.macs, site.output_size
    return Counts(params, macs, size)


def count(space: SearchSpaceSpec, arch: Arch) -> Counts:
    """Exact params and MACs of the extracted network of `arch` (no supernet needed)."""
    return count_sites(walk(space, arch))

"""The one walk over (space, arch): each layer position with its static configuration and input size.

Extraction, analytic counts, latency-layer enumeration and latency prediction all read this walk, so
their layer orders cannot drift apart. It is pure: no module is built and no weight is touched.

Resolution rules (every block family follows them): a layer of stride s maps an input of side (or
length) n to (n - 1) // s + 1; the first layer of a stage carries the stage's stride, the others 1.
A stage with searchable downsampling starts with a separate `downsample` layer (the arch's transition
kind and stride) and its blocks all keep their width and resolution.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from search_spaces import registry
from search_spaces.arch import Arch, LayerChoice

if TYPE_CHECKING:
    from search_spaces.spec import SearchSpaceSpec

FIXED = ("resize", "stem", "downsample", "head")  # layer kinds that are not block families


def strided(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # odd kernels padded by k // 2


@dataclass(frozen=True)
class Placement:
    """Where a block family's layer sits: what its static configuration depends on besides its choices."""

    dims: int  # 2 for images, 1 for sequences
    cin: int
    cout: int
    stride: int
    first: bool  # first layer of its stage (token blocks then start with a transition)


@dataclass(eq=False, slots=True)
class LayerSite:
    """One static layer of an arch: its kind ('resize', 'stem', 'head' or a block family), position,
    channels, the family's choice and its input / output size. Treat it as read-only.

    Slotted and built without validation, because the latency predictor walks hundreds of thousands
    of archs; `config` is computed on first use."""

    space: SearchSpaceSpec = field(repr=False)
    kind: str
    stage: int | None
    index: int | None  # layer index within its stage
    cin: int
    cout: int
    choice: LayerChoice | None
    input_size: int
    output_size: int
    stride: int = 1
    first: bool = False  # a block that starts its stage (token blocks then start with their own transition)
    transition: str | None = None  # a downsample layer's kind
    _config: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def placement(self) -> Placement:
        return Placement(self.space.input.dims, self.cin, self.cout, self.stride, self.first)

    @property
    def key(self) -> Hashable:
        """What decides this layer's configuration and input size at this position (cheap to hash)."""
        return (self.kind, self.stage, self.index, self.cin, self.cout, self.choice, self.input_size,
                self.output_size, self.stride, self.first, self.transition)

    @property
    def config(self) -> dict[str, Any]:
        """The static layer: {"type": kind, **constructor arguments} (see standalone.Network)."""
        if self._config is None:
            self._config = self._make_config()
        return self._config

    def _make_config(self) -> dict[str, Any]:
        space, dims = self.space, self.space.input.dims
        if self.kind == "resize":
            return {"type": "resize", "dims": dims, "size": self.output_size}
        if self.kind == "stem":
            return {"type": "stem", "dims": dims, "cin": self.cin, "cout": self.cout, "kernel": space.stem.kernel,
                    "stride": space.stem.stride}
        if self.kind == "downsample":
            return {"type": "downsample", "dims": dims, "cin": self.cin, "cout": self.cout, "kind": self.transition,
                    "stride": self.stride}
        if self.kind == "head":
            return {"type": "head", "dims": dims, "cin": self.cin, "width": space.head.width,
                    "num_classes": space.num_classes, "dropout": space.head.dropout}
        entry = registry.family(self.kind)
        return {"type": self.kind} | entry.config(self.placement, self.choice, space.block_params[self.kind])


def walk(space: SearchSpaceSpec, arch: Arch, check: bool = True) -> list[LayerSite]:
    """The static layers of `arch` in order (resize if any, stem, each block, head). With check=False the
    arch is trusted to belong to the space (callers that walk archs the space produced)."""
    if check:
        space.contains(arch)
    sites = []
    size = space.input.size
    if arch.resolution != size:
        sites.append(LayerSite(space, "resize", None, None, 0, 0, None, size, arch.resolution))
        size = arch.resolution
    cin = space.input.channels
    out = strided(size, space.stem.stride)
    sites.append(LayerSite(space, "stem", None, None, cin, arch.stem_width, None, size, out))
    size, cin = out, arch.stem_width
    for i, stage in enumerate(arch.stages):
        stride = space.stages[i].stride
        if stage.transition is not None:  # a separate transition layer takes the stride
            out = strided(size, stage.stride or 1)
            sites.append(LayerSite(space, "downsample", i, None, cin, stage.width, None, size, out,
                                   stride=stage.stride or 1, transition=stage.transition))
            size, cin, stride = out, stage.width, 1
        for j, layer in enumerate(stage.layers):
            first = j == 0 and stage.transition is None
            out = strided(size, stride) if first else size
            sites.append(LayerSite(space, layer.type, i, j, cin, stage.width, layer, size, out,
                                   stride=stride if first else 1, first=first))
            size, cin = out, stage.width
    sites.append(LayerSite(space, "head", None, None, cin, space.num_classes, None, size, size))
    return sites


def plan(space: SearchSpaceSpec, arch: Arch) -> list[dict[str, Any]]:
    """The static network of `arch` as data: [{"type": ..., **constructor arguments}, ...]."""
    return [site.config for site in walk(space, arch)]


def family_choices(space: SearchSpaceSpec, block: str) -> Iterator[LayerChoice]:
    """Every LayerChoice of family `block` that the space allows."""
    opts = space.options(block)
    choice = registry.family(block).choice
    for combo in itertools.product(*opts.values()):
        yield choice(**dict(zip(opts, combo, strict=True)))


def space_sites(space: SearchSpaceSpec) -> Iterator[LayerSite]:
    """Every layer site any arch of the space can have (the same configuration may recur at several)."""
    channels = space.input.channels
    for res in space.input.resolutions:
        if res != space.input.size:
            yield LayerSite(space, "resize", None, None, 0, 0, None, space.input.size, res)
        size = strided(res, space.stem.stride)
        for width in space.stem.widths:
            yield LayerSite(space, "stem", None, None, channels, width, None, res, size)
        cins, sizes = space.stem.widths, {size}
        for i, st in enumerate(space.stages):
            outs = set()
            for size, stride in itertools.product(sorted(sizes), st.stride_choices):
                out = strided(size, stride)
                outs.add(out)
                yield from _stage_sites(space, i, cins, size, stride, out)
            sizes, cins = outs, st.widths
        for cin, size in itertools.product(cins, sorted(sizes)):
            yield LayerSite(space, "head", None, None, cin, space.num_classes, None, size, size)


def _stage_sites(space: SearchSpaceSpec, i: int, cins: list[int], size: int, stride: int, out: int) -> Iterator[LayerSite]:
    """The sites of stage i entered at `size` with `stride` (leaving at `out`)."""
    st = space.stages[i]
    separate = bool(st.transitions)  # a downsample layer takes the stride; blocks keep width and size
    if separate:
        for kind, cin, cout in itertools.product(st.transitions, cins, st.widths):
            yield LayerSite(space, "downsample", i, None, cin, cout, None, size, out, stride=stride, transition=kind)
    for j in range(max(st.depths)):
        first = j == 0 and not separate
        pairs = itertools.product(cins, st.widths) if first else ((w, w) for w in st.widths)
        for cin, cout in pairs:
            for block in st.blocks:
                for choice in family_choices(space, block):
                    yield LayerSite(space, block, i, j, cin, cout, choice, size if first else out, out,
                                    stride=stride if first else 1, first=first)

"""HybridSupernet: one weight-sharing network whose sub-networks are the archs of a space.

`forward(x, arch)` runs the sub-network `arch` (passed as an argument; nothing is stored on the
modules); `extract(arch)` returns a plain static network with copies of the sliced weights.
"""

from __future__ import annotations

import functools
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.arch import Arch
from search_spaces.blocks import BLOCKS, ElasticBlock, Site
from search_spaces.counts import Counts, count_plan
from search_spaces.dynamic import DynamicLinear, ElasticConvNormAct, prefixed
from search_spaces.spec import SearchSpaceSpec
from search_spaces.standalone import Network, resize


class ElasticHead(nn.Module):
    def __init__(self, dims: int, cin_max: int, width: int, num_classes: int, dropout: float):
        super().__init__()
        self.features = ElasticConvNormAct(dims, cin_max, width) if width else None
        self.classifier = DynamicLinear(width or cin_max, num_classes)
        self.dims, self.width, self.num_classes, self.dropout = dims, width, num_classes, dropout

    def forward(self, x: Tensor) -> Tensor:
        if self.features is not None:
            x = self.features(x, self.width)
        x = F.dropout(x.flatten(2).mean(-1), self.dropout, self.training)  # (B, C)
        return self.classifier(x, self.num_classes)

    def plan(self, cin: int) -> dict[str, Any]:
        return {"type": "head", "dims": self.dims, "cin": cin, "width": self.width,
                "num_classes": self.num_classes, "dropout": self.dropout}

    def weights(self, cin: int) -> dict[str, Tensor]:
        w = prefixed("classifier", self.classifier.weights(self.width or cin, self.num_classes))
        if self.features is not None:
            w |= prefixed("features", self.features.weights(cin, self.width))
        return w


class HybridSupernet(nn.Module):
    def __init__(self, space: SearchSpaceSpec):
        super().__init__()
        self.space = space
        dims = space.input.dims
        stem = space.stem
        self.stem = ElasticConvNormAct(dims, space.input.channels, max(stem.widths), (stem.kernel,), stem.stride)
        self.stages = nn.ModuleList()
        cin_max = max(stem.widths)
        for stage in space.stages:
            layers = nn.ModuleList()
            width = max(stage.widths)
            for j in range(max(stage.depths)):
                site = Site(dims, cin_max if j == 0 else width, width, stage.stride if j == 0 else 1, j == 0,
                            space.block_params)
                layers.append(nn.ModuleDict({b: BLOCKS[b](site) for b in stage.blocks}))
            self.stages.append(layers)
            cin_max = width
        self.head = ElasticHead(dims, cin_max, space.head.width, space.num_classes, space.head.dropout)

    @classmethod
    def from_spec(cls, space: SearchSpaceSpec) -> HybridSupernet:
        return cls(space)

    def block(self, stage: int, layer: int, family: str) -> ElasticBlock:
        """The elastic block of one family at one layer position."""
        return cast(ElasticBlock, self.stages[stage][layer][family])  # type: ignore[index]

    def forward(self, x: Tensor, arch: Arch) -> Tensor:
        """x: (B, *space.input_shape) -> logits (B, num_classes) of the sub-network `arch`."""
        self.space.contains(arch)
        if arch.resolution != self.space.input.size:
            x = resize(x, arch.resolution, self.space.input.dims)
        x = self.stem(x, arch.stem_width)
        for i, stage in enumerate(arch.stages):
            for j, layer in enumerate(stage.layers):
                x = self.block(i, j, layer.type)(x, stage.width, layer)
        return self.head(x)

    # ---- static networks -------------------------------------------------------------------
    def _walk(self, arch: Arch):
        """Yield (plan, weights) of each static layer of `arch`, in order; `weights()` slices on demand,
        so plans and counts never pay for slicing or kernel transforms."""
        self.space.contains(arch)
        dims = self.space.input.dims
        if arch.resolution != self.space.input.size:
            yield {"type": "resize", "dims": dims, "size": arch.resolution}, dict
        stem = self.space.stem
        cin = self.space.input.channels
        yield (
            {"type": "stem", "dims": dims, "cin": cin, "cout": arch.stem_width, "kernel": stem.kernel,
             "stride": stem.stride},
            functools.partial(self.stem.weights, cin, arch.stem_width, stem.kernel),
        )
        cin = arch.stem_width
        for i, stage in enumerate(arch.stages):
            for j, layer in enumerate(stage.layers):
                block = self.block(i, j, layer.type)
                yield block.plan(cin, stage.width, layer), functools.partial(block.weights, cin, stage.width, layer)
                cin = stage.width
        yield self.head.plan(cin), functools.partial(self.head.weights, cin)

    def plan(self, arch: Arch) -> list[dict[str, Any]]:
        """The static network of `arch` as data: [{"type": ..., **constructor arguments}, ...]."""
        return [p for p, _ in self._walk(arch)]

    @torch.no_grad()
    def extract(self, arch: Arch) -> Network:
        """A plain nn.Module with copies of `arch`'s weights; in eval mode it equals forward(x, arch)."""
        plan: list[dict[str, Any]] = []
        state: dict[str, Tensor] = {}
        for i, (p, w) in enumerate(self._walk(arch)):
            plan.append(p)
            state |= prefixed(str(i), {k: v.detach().clone() for k, v in w().items()})
        net = Network(plan)
        net.load_state_dict(state)
        net.train(self.training)
        return net

    def counts(self, arch: Arch) -> Counts:
        return count_plan(self.plan(arch), self.space.input.size)

    def params(self, arch: Arch) -> int:
        """Parameters of the extracted network of `arch` (exact)."""
        return self.counts(arch).params

    def macs(self, arch: Arch) -> int:
        """Multiply-accumulates of one forward pass of `arch` on one sample."""
        return self.counts(arch).macs

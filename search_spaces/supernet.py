"""HybridSupernet: one weight-sharing network whose sub-networks are the archs of a space.

`forward(x, arch)` runs the sub-network `arch` (passed as an argument; nothing is stored on the
modules); `extract(arch)` returns a plain static network with copies of the sliced weights.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces import registry
from search_spaces.arch import Arch
from search_spaces.blocks import ElasticBlock, Site
from search_spaces.dynamic import DynamicLinear, ElasticConvNormAct, prefixed
from search_spaces.spec import SearchSpaceSpec
from search_spaces.standalone import Network, pool, resize
from search_spaces.walk import LayerSite, plan, walk


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

    def weights(self, cin: int) -> dict[str, Tensor]:
        w = prefixed("classifier", self.classifier.weights(self.width or cin, self.num_classes))
        if self.features is not None:
            w |= prefixed("features", self.features.weights(cin, self.width))
        return w


class ElasticDownsample(nn.Module):
    """Elastic twin of standalone.Downsample for every transition kind a stage offers; the kind, width and
    stride are arguments."""

    def __init__(self, dims: int, cin_max: int, cout_max: int, kinds: list[str]):
        super().__init__()
        parts: dict[str, nn.Module] = {}
        if "conv" in kinds:
            parts["depthwise"] = ElasticConvNormAct(dims, cin_max, cin_max, (3,), depthwise=True, act=False)
        if "embed" in kinds:
            parts["embed"] = ElasticConvNormAct(dims, cin_max, cout_max, (3,), act=False)
        if {"conv", "pool"} & set(kinds):
            parts["pointwise"] = ElasticConvNormAct(dims, cin_max, cout_max, act=False)
        self.parts = nn.ModuleDict(parts)

    def part(self, name: str) -> ElasticConvNormAct:
        return cast(ElasticConvNormAct, self.parts[name])

    def forward(self, x: Tensor, cout: int, kind: str, stride: int) -> Tensor:
        if kind == "embed":
            return self.part("embed")(x, cout, stride=stride)
        x = self.part("depthwise")(x, x.shape[1], stride=stride) if kind == "conv" else pool(x, stride)
        return self.part("pointwise")(x, cout)

    def weights(self, cin: int, cout: int, kind: str) -> dict[str, Tensor]:
        if kind == "embed":
            return prefixed("embed", self.part("embed").weights(cin, cout))
        w = prefixed("pointwise", self.part("pointwise").weights(cin, cout))
        return w | (prefixed("depthwise", self.part("depthwise").weights(cin, cin)) if kind == "conv" else {})


class HybridSupernet(nn.Module):
    def __init__(self, space: SearchSpaceSpec):
        super().__init__()
        self.space = space
        dims = space.input.dims
        stem = space.stem
        self.stem = ElasticConvNormAct(dims, space.input.channels, max(stem.widths), (stem.kernel,), stem.stride)
        self.stages = nn.ModuleList()
        self.downsamples = nn.ModuleDict()  # stages with searchable downsampling, by index
        cin_max = max(stem.widths)
        for i, stage in enumerate(space.stages):
            layers = nn.ModuleList()
            width = max(stage.widths)
            if stage.transitions:
                self.downsamples[str(i)] = ElasticDownsample(dims, cin_max, width, stage.transitions)
            for j in range(max(stage.depths)):
                families = {}
                first = j == 0 and not stage.transitions
                for b in stage.blocks:
                    site = Site(dims, cin_max if first else width, width, stage.stride if first else 1, first,
                                space.block_params[b])
                    families[b] = registry.family(b).elastic(site)
                layers.append(nn.ModuleDict(families))
            self.stages.append(layers)
            cin_max = width
        self.head = ElasticHead(dims, cin_max, space.head.width, space.num_classes, space.head.dropout)

    @classmethod
    def from_spec(cls, space: SearchSpaceSpec) -> HybridSupernet:
        return cls(space)

    def block(self, stage: int, layer: int, family: str) -> ElasticBlock:
        """The elastic block of one family at one layer position."""
        return cast(ElasticBlock, self.stages[stage][layer][family])  # type: ignore[index]

    def downsample(self, stage: int) -> ElasticDownsample:
        return cast(ElasticDownsample, self.downsamples[str(stage)])

    def forward(self, x: Tensor, arch: Arch) -> Tensor:
        """x: (B, *space.input_shape) -> logits (B, num_classes) of the sub-network `arch`."""
        self.space.contains(arch)
        if arch.resolution != self.space.input.size:
            x = resize(x, arch.resolution, self.space.input.dims)
        x = self.stem(x, arch.stem_width)
        for i, stage in enumerate(arch.stages):
            if stage.transition is not None:
                x = self.downsample(i)(x, stage.width, stage.transition, stage.stride or 1)
            for j, layer in enumerate(stage.layers):
                x = self.block(i, j, layer.type)(x, stage.width, layer)
        return self.head(x)

    # ---- static networks -------------------------------------------------------------------
    def site_weights(self, site: LayerSite) -> dict[str, Tensor]:
        """The sliced weights of one layer of the walk, named as in its static module."""
        if site.kind == "resize":
            return {}
        if site.kind == "stem":
            return self.stem.weights(site.cin, site.cout, self.space.stem.kernel)
        if site.kind == "head":
            return self.head.weights(site.cin)
        if site.kind == "downsample":
            assert site.stage is not None and site.transition is not None
            return self.downsample(site.stage).weights(site.cin, site.cout, site.transition)
        assert site.stage is not None and site.index is not None
        return self.block(site.stage, site.index, site.kind).weights(site.cin, site.cout, site.choice)

    def plan(self, arch: Arch) -> list[dict[str, Any]]:
        """The static network of `arch` as data (see search_spaces.walk.plan; no weights involved)."""
        return plan(self.space, arch)

    @torch.no_grad()
    def extract(self, arch: Arch) -> Network:
        """A plain nn.Module with copies of `arch`'s weights; in eval mode it equals forward(x, arch)."""
        sites = walk(self.space, arch)
        state: dict[str, Tensor] = {}
        for i, site in enumerate(sites):
            state |= prefixed(str(i), {k: v.detach().clone() for k, v in self.site_weights(site).items()})
        net = Network([site.config for site in sites])
        net.load_state_dict(state)
        net.train(self.training)
        return net

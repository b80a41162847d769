"""`fused`: Fused-MBConv (EfficientNetV2, MobileDets): the expansion and the depthwise conv of MBConv fused
into one full kxk conv, faster than MBConv on many accelerators in early, wide-resolution stages.
Elastic kernel size and expand ratio."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator
from torch import Tensor

from search_spaces.arch import LayerChoice
from search_spaces.blocks.base import ElasticBlock, Site, register_block
from search_spaces.counts import Counts, conv_norm, total
from search_spaces.dynamic import ElasticConvNormAct, prefixed
from search_spaces.spec import FamilyParams, odd_kernels, sorted_choices
from search_spaces.standalone import FusedMBConv
from search_spaces.walk import Placement


class FusedLayer(LayerChoice):
    type: Literal["fused"] = "fused"
    kernel: int
    expand: int


class FusedParams(FamilyParams):
    kernels: list[int] = [3, 5]
    expands: list[int] = [1, 2, 4]

    _k = field_validator("kernels")(classmethod(lambda cls, v: odd_kernels(v, 1, 7)))

    _e = field_validator("expands")(classmethod(lambda cls, v: sorted_choices(v, "expands")))

    def options(self) -> dict[str, list]:
        return {"kernel": self.kernels, "expand": self.expands}


def count_fused(p: dict[str, Any], size: int) -> Counts:
    expand = conv_norm(p["dims"], p["cin"], p["mid"], p["kernel"], p["stride"], 1, size)
    project = conv_norm(p["dims"], p["mid"], p["cout"], 1, 1, 1, expand.size)
    return total(expand, project, size=expand.size)


@register_block("fused", choice=FusedLayer, params=FusedParams, static=FusedMBConv, count=count_fused,
                label="fused-MBConv (EfficientNetV2)", colour="#c7d2fe", letter="f")
class ElasticFusedMBConv(ElasticBlock):
    def __init__(self, site: Site):
        super().__init__(site)
        options: FusedParams = site.params
        mid_max = site.cin * max(options.expands)
        self.expand = ElasticConvNormAct(site.dims, site.cin, mid_max, options.kernels, site.stride)
        self.project = ElasticConvNormAct(site.dims, mid_max, site.cout, act=False)

    def forward(self, x: Tensor, cout: int, layer: FusedLayer) -> Tensor:
        cin = x.shape[1]
        y = self.project(self.expand(x, cin * layer.expand, layer.kernel), cout)
        return x + y if self.site.stride == 1 and cin == cout else y

    @staticmethod
    def static_config(at: Placement, layer: FusedLayer, params: FusedParams) -> dict[str, Any]:
        return {"dims": at.dims, "cin": at.cin, "cout": at.cout, "mid": at.cin * layer.expand,
                "kernel": layer.kernel, "stride": at.stride}

    def weights(self, cin: int, cout: int, layer: FusedLayer) -> dict[str, Tensor]:
        mid = cin * layer.expand
        return prefixed("expand", self.expand.weights(cin, mid, layer.kernel)) | prefixed(
            "project", self.project.weights(mid, cout))

"""`conv`: inverted residual (MBConv) with elastic expand ratio, kernel size and squeeze-excite."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator
from torch import Tensor

from search_spaces.arch import LayerChoice
from search_spaces.blocks.base import ElasticBlock, Site, register_block
from search_spaces.counts import Counts, conv_norm, linear, total
from search_spaces.dynamic import DynamicLinear, ElasticConvNormAct, prefixed
from search_spaces.spec import FamilyParams, odd_kernels, sorted_choices
from search_spaces.standalone import MBConv, squeeze_excite
from search_spaces.walk import Placement


class ConvLayer(LayerChoice):
    type: Literal["conv"] = "conv"
    kernel: int
    expand: int
    se: bool


class ConvParams(FamilyParams):
    kernels: list[int] = [3, 5, 7]
    expands: list[int] = [2, 4, 6]
    se: list[bool] = [False, True]

    _k = field_validator("kernels")(classmethod(lambda cls, v: odd_kernels(v, 1, 9)))

    _e = field_validator("expands")(classmethod(lambda cls, v: sorted_choices(v, "expands")))
    _s = field_validator("se")(classmethod(lambda cls, v: sorted_choices(v, "se")))

    def options(self) -> dict[str, list]:
        return {"kernel": self.kernels, "expand": self.expands, "se": self.se}


def se_hidden(mid: int) -> int:
    return max(8, mid // 4)


def count_mbconv(p: dict[str, Any], size: int) -> Counts:
    d, mid = p["dims"], p["mid"]
    expand = conv_norm(d, p["cin"], mid, 1, 1, 1, size)
    dw = conv_norm(d, mid, mid, p["kernel"], p["stride"], mid, size)
    se = [linear(mid, p["se_hidden"], 1), linear(p["se_hidden"], mid, 1)] if p["se_hidden"] else []
    project = conv_norm(d, mid, p["cout"], 1, 1, 1, dw.size)
    return total(expand, dw, *se, project, size=dw.size)


@register_block("conv", choice=ConvLayer, params=ConvParams, static=MBConv, count=count_mbconv,
                label="conv (MBConv)", colour="#dbeafe")
class ElasticMBConv(ElasticBlock):
    def __init__(self, site: Site):
        super().__init__(site)
        options: ConvParams = site.params
        mid_max = site.cin * max(options.expands)
        self.expand = ElasticConvNormAct(site.dims, site.cin, mid_max)
        self.depthwise = ElasticConvNormAct(site.dims, mid_max, mid_max, options.kernels, site.stride, depthwise=True)
        has_se = True in options.se
        self.se_reduce = DynamicLinear(mid_max, se_hidden(mid_max)) if has_se else None
        self.se_expand = DynamicLinear(se_hidden(mid_max), mid_max) if has_se else None
        self.project = ElasticConvNormAct(site.dims, mid_max, site.cout, act=False)

    def forward(self, x: Tensor, cout: int, layer: ConvLayer) -> Tensor:
        cin = x.shape[1]
        mid = cin * layer.expand
        y = self.depthwise(self.expand(x, mid), mid, layer.kernel)
        if layer.se:
            r, e = self._se_weights(mid)
            y = squeeze_excite(y, r["weight"], r["bias"], e["weight"], e["bias"])
        y = self.project(y, cout)
        return x + y if self.site.stride == 1 and cin == cout else y

    def _se_weights(self, mid: int):
        hidden = se_hidden(mid)
        assert self.se_reduce is not None and self.se_expand is not None, "the space has no squeeze-excite"
        return self.se_reduce.weights(mid, hidden), self.se_expand.weights(hidden, mid)

    @staticmethod
    def static_config(at: Placement, layer: ConvLayer, params: ConvParams) -> dict[str, Any]:
        mid = at.cin * layer.expand
        return {"dims": at.dims, "cin": at.cin, "cout": at.cout, "mid": mid, "kernel": layer.kernel,
                "stride": at.stride, "se_hidden": se_hidden(mid) if layer.se else 0}

    def weights(self, cin: int, cout: int, layer: ConvLayer) -> dict[str, Tensor]:
        mid = cin * layer.expand
        w = (
            prefixed("expand", self.expand.weights(cin, mid))
            | prefixed("depthwise", self.depthwise.weights(mid, mid, layer.kernel))
            | prefixed("project", self.project.weights(mid, cout))
        )
        if layer.se:
            r, e = self._se_weights(mid)
            w |= prefixed("se.reduce", r) | prefixed("se.expand", e)
        return w

"""`conv`: inverted residual (MBConv) with elastic expand ratio, kernel size and squeeze-excite."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from search_spaces.arch import ConvLayer
from search_spaces.blocks.base import ElasticBlock, Site, register_block
from search_spaces.dynamic import DynamicLinear, ElasticConvNormAct, prefixed
from search_spaces.standalone import squeeze_excite


def se_hidden(mid: int) -> int:
    return max(8, mid // 4)


@register_block("conv")
class ElasticMBConv(ElasticBlock):
    def __init__(self, site: Site):
        super().__init__(site)
        p = site.params.conv
        mid_max = site.cin_max * max(p.expands)
        self.expand = ElasticConvNormAct(site.dims, site.cin_max, mid_max)
        self.depthwise = ElasticConvNormAct(site.dims, mid_max, mid_max, p.kernels, site.stride, depthwise=True)
        self.se_reduce = DynamicLinear(mid_max, se_hidden(mid_max)) if True in p.se else None
        self.se_expand = DynamicLinear(se_hidden(mid_max), mid_max) if True in p.se else None
        self.project = ElasticConvNormAct(site.dims, mid_max, site.cout_max, act=False)

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

    def plan(self, cin: int, cout: int, layer: ConvLayer) -> dict[str, Any]:
        mid = cin * layer.expand
        return {
            "type": "conv", "dims": self.site.dims, "cin": cin, "cout": cout, "mid": mid, "kernel": layer.kernel,
            "stride": self.site.stride, "se_hidden": se_hidden(mid) if layer.se else 0,
        }

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

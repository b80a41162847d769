"""A block family defined only in this file gets everything with one registration and no other change:
sampling and parsing, exact extract, analytic counts, latency-layer enumeration and prediction, and
exports (standalone model.py in a fresh process, ONNX checked with onnxruntime, TorchScript)."""

from __future__ import annotations

import json
import random
from typing import Any, Literal

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import field_validator
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from nas.export.model import export_network
from nas.latency import LatencyPredictor, LatencyTable
from nas.latency.layers import arch_layers, space_layers
from nas.latency.table import Entry, layer_key, space_ref
from search_spaces import HybridSupernet, LayerChoice, count, space_from_dict
from search_spaces.blocks import ElasticBlock, Site, register_block, unregister_block
from search_spaces.counts import Counts, linear
from search_spaces.spec import FamilyParams, sorted_choices
from search_spaces.standalone import conv_nd
from search_spaces.walk import Placement, strided
from tests.nas.test_export import check_exports
from tests.nas.test_latency import profile


# ---- a MambaOut-style gated CNN block, written as a user would -------------------------------------------
class GatedLayer(LayerChoice):
    type: Literal["user_gated"] = "user_gated"
    expand: int
    kernel: int


class GatedParams(FamilyParams):
    expands: list[int] = [1, 2]
    kernels: list[int] = [3, 5]

    _e = field_validator("expands")(classmethod(lambda cls, v: sorted_choices(v, "expands")))
    _k = field_validator("kernels")(classmethod(lambda cls, v: sorted_choices(v, "kernels")))

    def options(self) -> dict[str, list]:
        return {"expand": self.expands, "kernel": self.kernels}


class GatedConv(nn.Module):
    """1x1 to gate and value, depthwise kxk (strided) over both, SiLU(gate) * value, 1x1 projection."""

    def __init__(self, dims: int, cin: int, cout: int, hidden: int, kernel: int, stride: int):
        super().__init__()
        self.fc1 = conv_nd(dims, cin, 2 * hidden, 1, bias=True)
        self.dw = conv_nd(dims, 2 * hidden, 2 * hidden, kernel, stride, groups=2 * hidden, bias=True)
        self.fc2 = conv_nd(dims, hidden, cout, 1, bias=True)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.dw(self.fc1(x)).chunk(2, dim=1)
        y = self.fc2(F.silu(gate) * value)
        return x + y if self.residual else y


def count_gated(p: dict[str, Any], size: int) -> Counts:
    d, h, k, out = p["dims"], p["hidden"], p["kernel"], strided(size, p["stride"])
    fc1 = linear(p["cin"], 2 * h, size**d)
    dw = Counts(2 * h * k**d + 2 * h, 2 * h * k**d * out**d, out)
    fc2 = linear(h, p["cout"], out**d)
    return Counts(fc1.params + dw.params + fc2.params, fc1.macs + dw.macs + fc2.macs, out)


class ElasticGated(ElasticBlock):
    def __init__(self, site: Site):
        super().__init__(site)
        p, d = site.params, site.dims
        h, k = site.cin * max(p.expands), max(p.kernels)
        self.fc1_w = nn.Parameter(torch.randn(2, h, site.cin) * 0.2)  # gate and value halves
        self.fc1_b = nn.Parameter(torch.zeros(2, h))
        self.dw_w = nn.Parameter(torch.randn(2, h, 1, *(k,) * d) * 0.2)
        self.dw_b = nn.Parameter(torch.zeros(2, h))
        self.fc2_w = nn.Parameter(torch.randn(site.cout, h) * 0.2)
        self.fc2_b = nn.Parameter(torch.zeros(site.cout))

    @staticmethod
    def static_config(at: Placement, layer: GatedLayer, params: GatedParams) -> dict[str, Any]:
        return {"dims": at.dims, "cin": at.cin, "cout": at.cout, "hidden": at.cin * layer.expand,
                "kernel": layer.kernel, "stride": at.stride}

    def weights(self, cin: int, cout: int, layer: GatedLayer) -> dict[str, Tensor]:
        d, h, k = self.site.dims, cin * layer.expand, layer.kernel
        big = self.dw_w.shape[-1]
        lo = (big - k) // 2
        dw = self.dw_w[:, :h, :, lo:lo + k, lo:lo + k] if d == 2 else self.dw_w[:, :h, :, lo:lo + k]
        pad = (1,) * d
        return {
            "fc1.weight": self.fc1_w[:, :h, :cin].reshape(2 * h, cin, *pad), "fc1.bias": self.fc1_b[:, :h].reshape(2 * h),
            "dw.weight": dw.reshape(2 * h, 1, *(k,) * d), "dw.bias": self.dw_b[:, :h].reshape(2 * h),
            "fc2.weight": self.fc2_w[:cout, :h].reshape(cout, h, *pad), "fc2.bias": self.fc2_b[:cout],
        }

    def forward(self, x: Tensor, cout: int, layer: GatedLayer) -> Tensor:
        static = GatedConv(**self.static_config(self.placement(x.shape[1], cout), layer, self.site.params))
        return torch.func.functional_call(static, self.weights(x.shape[1], cout, layer), (x,))


SPACE = {
    "name": "gated-test", "input": {"kind": "image", "channels": 1, "size": 8, "scales": [0.75, 1.0]},
    "num_classes": 10, "stem": {"widths": [8]},
    "stages": [{"depths": [1, 2], "widths": [8, 16], "stride": 1, "blocks": ["conv", "user_gated"]},
               {"depths": [1, 2], "widths": [16], "stride": 2, "blocks": ["user_gated", "attention"]}],
    "block_params": {"conv": {"kernels": [3], "expands": [1, 2], "se": [False]},
                     "attention": {"heads": [1, 2], "head_dim": 8, "mlp_ratios": [1]},
                     "user_gated": {"expands": [1, 2], "kernels": [3, 5]}},
}


@pytest.fixture(scope="module")
def space():
    register_block("user_gated", choice=GatedLayer, params=GatedParams, static=GatedConv, count=count_gated,
                   label="gated CNN (MambaOut)", colour="#fbcfe8")(ElasticGated)
    yield space_from_dict(SPACE)
    unregister_block("user_gated")


def _archs(space, n=30):
    rng = random.Random(0)
    archs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(n)]
    assert any("user_gated" in a.layer_types() for a in archs)
    return archs


def test_sampling_parsing_and_encoding(space):
    for arch in _archs(space):
        assert space.parse(json.loads(arch.to_json())) == arch
        assert space.decode(space.encode(arch)) == arch
    with pytest.raises(ValueError, match="expand"):
        space.parse(json.loads(_archs(space)[0].to_json().replace('"expand":2', '"expand":7')))


def test_extract_and_counts_are_exact(space):
    net = HybridSupernet.from_spec(space).eval()
    x = torch.randn(2, *space.input_shape)
    for arch in _archs(space, 12):
        static = net.extract(arch).eval()
        with torch.no_grad():
            assert (net(x, arch) - static(x)).abs().max() <= 1e-5
        assert count(space, arch).params == sum(p.numel() for p in static.parameters())
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH), torch.no_grad():
            static(x[:1])
        assert count(space, arch).macs == counter.get_total_flops() // 2


def test_latency_layers_and_prediction(space):
    wanted = {layer_key(e, s) for e, s in space_layers(space)}
    assert any(json.loads(k)["layer"]["type"] == "user_gated" for k in wanted)
    rng = np.random.default_rng(0)
    entries = [Entry(layer=e, input_size=s, ms=float(rng.uniform(0.01, 1))) for e, s in space_layers(space)]
    table = LatencyTable(spaces=[space_ref(space)], profile=profile(), entries=entries)
    predictor = LatencyPredictor(table, space)
    ms = table.lookup()
    for arch in _archs(space):
        used = [layer_key(e, s) for e, s in arch_layers(space, arch)]
        assert set(used) <= wanted
        assert predictor(arch) == pytest.approx(sum(ms[k] for k in used))


def test_exports_of_an_arch_with_the_new_family(space, tmp_path):
    net = HybridSupernet.from_spec(space).eval()
    arch = next(a for a in _archs(space) if "user_gated" in a.layer_types())
    exported = export_network(net, arch, [0.5], [2.0])
    info = {"arch_id": arch.id, "arch": arch.to_dict(), "metrics": {}, "space": {"name": space.name, "version": 1},
            "input_shape": list(space.input_shape), "normalization": {"mean": [0.5], "std": [2.0]}}

    def expected(x):
        with torch.no_grad():
            return net(((x - 0.5) / 2.0), arch).numpy()

    check_exports(exported, info, expected, tmp_path)

"""Every registered block family, in a space of its own (images and sequences): extraction is exact,
analytic params and MACs match the extracted network (MACs: torch's FlopCounterMode), the elastic forward
keeps no arch state, and exports (model.py, TorchScript, ONNX in onnxruntime) reproduce the supernet."""

import random

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from nas.export.model import export_network
from search_spaces import HybridSupernet, count, space_from_dict
from search_spaces.registry import BLOCKS
from tests.nas.test_export import check_exports, info_for
from tests.search_spaces.test_blocks import CUSTOM

INPUTS = {"image": {"kind": "image", "channels": 2, "size": 9, "scales": [0.8, 1.0]},
          "sequence": {"kind": "sequence", "channels": 3, "size": 24, "scales": [0.75, 1.0]}}


def family_space(family: str, kind: str):
    """Stem, then two stages (the second strided) of `family` blocks only."""
    return space_from_dict({
        "name": f"{family}-{kind}", "input": INPUTS[kind], "num_classes": 5, "stem": {"widths": [8]},
        "stages": [{"depths": [1, 2], "widths": [8, 16], "stride": 1, "blocks": [family]},
                   {"depths": [1, 2], "widths": [16], "stride": 2, "blocks": [family]}],
        "block_params": {family: CUSTOM.get(family, {})}, "head": {"width": 0},
    })


def archs(space, n=6):
    rng = random.Random(0)
    return [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(n)]


@pytest.fixture(scope="module", params=[(f, k) for f in sorted(BLOCKS) for k in INPUTS], ids=lambda p: f"{p[0]}-{p[1]}")
def built(request):
    torch.manual_seed(0)
    space = family_space(*request.param)
    return space, HybridSupernet.from_spec(space).eval()


def test_extract_and_counts_are_exact(built):
    space, net = built
    x = torch.randn(2, *space.input_shape)
    for arch in archs(space):
        static = net.extract(arch).eval()
        with torch.no_grad():
            assert (net(x, arch) - static(x)).abs().max() <= 1e-4
        counts = count(space, arch)
        assert counts.params == sum(p.numel() for p in static.parameters())
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH), torch.no_grad():
            static(x[:1])
        assert counts.macs == counter.get_total_flops() // 2


def test_forward_keeps_no_arch_state(built):
    space, net = built
    a, b = space.largest(), space.smallest()
    x = torch.randn(2, *space.input_shape)
    with torch.no_grad():
        ya = net(x, a)
        net(x, b)
        assert torch.equal(net(x, a), ya)


def test_exports_reproduce_the_supernet(built, tmp_path):
    space, net = built
    arch = archs(space)[2]
    exported = export_network(net, arch, [0.5] * space.input.channels, [0.5] * space.input.channels)

    def expected(x):
        with torch.no_grad():
            return net((x - 0.5) / 0.5, arch).numpy()

    check_exports(exported, info_for(space, arch, [0.5] * space.input.channels), expected, tmp_path)

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


def assert_exact_and_counted(space, net, sampled) -> None:
    """Each arch's extracted network equals the supernet's subnet, and its analytic counts are exact."""
    x = torch.randn(2, *space.input_shape)
    for arch in sampled:
        static = net.extract(arch).eval()
        with torch.no_grad():
            assert (net(x, arch) - static(x)).abs().max() <= 1e-4
        counts = count(space, arch)
        assert counts.params == sum(p.numel() for p in static.parameters())
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH), torch.no_grad():
            static(x[:1])
        assert counts.macs == counter.get_total_flops() // 2


def assert_exports(space, net, arch, folder) -> None:
    """model.py, ONNX (in onnxruntime) and TorchScript exports of `arch` reproduce the supernet."""
    channels = space.input.channels
    exported = export_network(net, arch, [0.5] * channels, [0.5] * channels)

    def expected(x):
        with torch.no_grad():
            return net((x - 0.5) / 0.5, arch).numpy()

    check_exports(exported, info_for(space, arch, [0.5] * channels), expected, folder)


def test_extract_and_counts_are_exact(built):
    space, net = built
    assert_exact_and_counted(space, net, archs(space))


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
    assert_exports(space, net, archs(space)[2], tmp_path)


def downsampling_space(kind: str):
    """Searchable downsampling: stage 1 may keep the resolution or halve it with any transition kind."""
    return space_from_dict({
        "name": f"downsampling-{kind}", "input": INPUTS[kind], "num_classes": 5, "stem": {"widths": [8]},
        "stages": [{"depths": [1], "widths": [8], "blocks": ["conv"]},
                   {"depths": [1, 2], "widths": [16, 24], "blocks": ["conv", "attention", "gated"],
                    "transitions": ["conv", "embed", "pool"], "strides": [1, 2]},
                   {"depths": [1], "widths": [24], "blocks": ["ssm", "window"], "transitions": ["pool"],
                    "strides": [3]}],
        "block_params": {"conv": {"kernels": [3], "expands": [1, 2]}, "attention": {"heads": [1, 2], "head_dim": 8},
                         "ssm": {"head_dim": 8, "chunk": 4}, "window": {"head_dim": 8, "windows": [2]}},
    })


@pytest.mark.parametrize("kind", list(INPUTS))
def test_searchable_downsampling_is_exact_counted_enumerated_and_exported(kind, tmp_path):
    from nas.latency.layers import arch_layers, space_layers
    from nas.latency.table import layer_key

    torch.manual_seed(0)
    space = downsampling_space(kind)
    net = HybridSupernet.from_spec(space).eval()
    rng = random.Random(1)
    sampled = archs(space, 12) + [space.sample(rng) for _ in range(20)]
    assert {(a.stages[1].transition, a.stages[1].stride) for a in sampled} == {
        (k, s) for k in ("conv", "embed", "pool") for s in (1, 2)}
    assert_exact_and_counted(space, net, sampled[:10])
    wanted = {layer_key(c, s) for c, s in space_layers(space)}
    assert all({layer_key(c, s) for c, s in arch_layers(space, a)} <= wanted for a in sampled)
    arch = next(a for a in sampled if a.stages[1].transition == "pool" and a.stages[1].stride == 2)
    assert_exports(space, net, arch, tmp_path)

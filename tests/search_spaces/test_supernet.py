import random

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from search_spaces import ArchError, HybridSupernet, count, get_space

COUNTS = {"hybrid-tiny": 50, "hybrid-small": 50, "hybrid-seq": 50, "hybrid-mobile": 2}


@pytest.mark.parametrize("name", list(COUNTS))
def test_extracted_network_equals_supernet(name):
    space = get_space(name)
    net = HybridSupernet.from_spec(space).eval()
    rng = random.Random(0)
    archs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(COUNTS[name])]
    x = torch.randn(2, *space.input_shape)
    types = set()
    for arch in archs:
        with torch.no_grad():
            y = net(x, arch)
            static = net.extract(arch).eval()
            y_static = static(x)
        assert y.shape == (2, space.num_classes)
        assert (y - y_static).abs().max().item() <= 1e-5, arch.to_json()
        assert count(space, arch).params == sum(p.numel() for p in static.parameters())
        types |= set(arch.layer_types())
    assert types == {"conv", "attention", "ssm"}


@pytest.mark.parametrize("name", ["hybrid-tiny", "hybrid-small", "hybrid-seq"])
def test_analytic_macs_match_torch_flop_counter(name):
    space = get_space(name)
    net = HybridSupernet.from_spec(space).eval()
    rng = random.Random(1)
    for arch in [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(8)]:
        static = net.extract(arch).eval()
        # the math backend runs attention as matmuls, which the flop counter sees
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH), torch.no_grad():
            static(torch.randn(1, *space.input_shape))
        assert count(space, arch).macs == counter.get_total_flops() // 2


def test_extracted_network_is_independent_of_the_supernet():
    space = get_space("hybrid-tiny")
    net = HybridSupernet.from_spec(space).eval()
    arch = space.largest()
    static = net.extract(arch).eval()
    x = torch.randn(2, *space.input_shape)
    before = static(x)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    assert torch.equal(static(x), before)


def test_forward_keeps_no_arch_state():
    space = get_space("hybrid-small")
    net = HybridSupernet.from_spec(space).eval()
    a, b = space.sample(random.Random(1)), space.sample(random.Random(2))
    x = torch.randn(2, *space.input_shape)
    with torch.no_grad():
        ya = net(x, a)
        net(x, b)
        assert torch.equal(net(x, a), ya)


def test_largest_subnet_trains_to_near_zero_loss():
    torch.manual_seed(0)
    space = get_space("hybrid-small")
    net = HybridSupernet.from_spec(space).train()
    arch = space.largest()
    x = torch.randn(16, *space.input_shape)
    y = torch.arange(16) % space.num_classes
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    first = None
    for _ in range(150):
        loss = F.cross_entropy(net(x, arch), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 1.5 and loss.item() < 0.05


def test_gradients_reach_used_blocks_only():
    space = get_space("hybrid-small")
    net = HybridSupernet.from_spec(space).train()
    arch = space.smallest()  # depth 1 everywhere, conv blocks only
    net(torch.randn(4, *space.input_shape), arch).sum().backward()
    for name, p in net.named_parameters():
        unused = (any(f".{t}." in name for t in ("attention", "ssm")) or ".1.conv." in name or ".2.conv." in name
                  or ".se_" in name)  # smallest() has no squeeze-excite
        if unused:
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_arch_outside_the_space_is_rejected():
    tiny, small = get_space("hybrid-tiny"), get_space("hybrid-small")
    net = HybridSupernet.from_spec(tiny)
    with pytest.raises(ArchError):
        net(torch.randn(1, *tiny.input_shape), small.largest())
    with pytest.raises(ArchError):
        net.extract(small.largest())


def test_smaller_resolution_resizes_inside_both_models():
    space = get_space("hybrid-seq")
    net = HybridSupernet.from_spec(space).eval()
    arch = space.smallest()
    assert arch.resolution < space.input.size
    static = net.extract(arch).eval()
    assert static.plan[0]["type"] == "resize"
    x = torch.randn(3, *space.input_shape)
    with torch.no_grad():
        assert torch.allclose(net(x, arch), static(x), atol=1e-5)

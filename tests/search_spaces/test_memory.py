"""The analytic peak activation memory against the CPU allocator's live bytes during a real forward on
PyTorch's native CPU kernels (the runtime it models), for 20 random archs of every preset, and the weights
size against the extracted network's parameters."""

import random

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from search_spaces import get_space, list_presets, plan
from search_spaces.memory import memory_metrics, peak_activation_bytes, weights_bytes
from search_spaces.standalone import Network

THREADS = 2


def measured_peak_bytes(net: torch.nn.Module, x: torch.Tensor) -> int:
    """Most bytes the CPU allocator holds at once during `net(x)`, beyond what existed before, plus the input."""
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
        net(x)  # warm: one-off allocations (e.g. cached weight layouts) are not activations
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            net(x)
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak + x.nbytes


@pytest.mark.parametrize("preset", list_presets())
def test_peak_memory_estimate_is_within_10_percent_of_the_measurement(preset):
    space = get_space(preset)
    torch.set_num_threads(THREADS)
    rng = random.Random(0)
    misses = []
    for _ in range(20):
        arch = space.sample(rng)
        net = Network(plan(space, arch)).eval()
        measured = measured_peak_bytes(net, torch.randn(1, *space.input_shape))
        estimated = peak_activation_bytes(space, arch)
        if abs(estimated - measured) > 0.10 * measured:
            misses.append((arch.id[:8], estimated, measured))
        assert weights_bytes(space, arch) == sum(p.nbytes for p in net.parameters())
    assert not misses, misses


def test_memory_objectives_are_in_mib_and_grow_with_the_arch():
    space = get_space("hybrid-small")
    small, large = memory_metrics(space, space.smallest()), memory_metrics(space, space.largest())
    assert 0 < small["peak_memory_mb"] < large["peak_memory_mb"] and 0 < small["weights_mb"] < large["weights_mb"]
    assert large["weights_mb"] == pytest.approx(weights_bytes(space, space.largest()) / 2**20)

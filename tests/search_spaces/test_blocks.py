"""Conformance tests every registered block family gets for free."""

import random

import pytest
import torch

from search_spaces.blocks import Site
from search_spaces.registry import BLOCKS

CUSTOM = {  # options other than the defaults, where the defaults would make the test too slow or too easy
    "conv": {"kernels": [3, 5, 7], "expands": [1, 3], "se": [False, True]},
    "attention": {"heads": [1, 2, 3], "head_dim": 8, "mlp_ratios": [1, 2], "projections": ["linear", "conv"]},
    "ssm": {"states": [4, 8], "expands": [1, 2], "head_dim": 8, "chunk": 4},
    "window": {"heads": [1, 2], "head_dim": 8, "mlp_ratios": [1, 2], "windows": [3, 4], "grid": [False, True],
               "projections": ["linear", "conv"]},
    "longconv": {"sub_kernels": [2, 4], "mlp_ratios": [1, 2], "scales": 4},
    "vssm": {"states": [4, 8], "expands": [1, 2], "head_dim": 8, "chunk": 4, "directions": [1, 2, 4]},
}


def params(family):
    return BLOCKS[family].params.model_validate(CUSTOM.get(family, {}))
CASES = [  # dims, cin_max, cout_max, stride, first, size
    (2, 16, 24, 2, True, 7),
    (2, 24, 24, 1, False, 5),
    (1, 16, 32, 2, True, 19),
    (1, 32, 32, 1, False, 10),
]


def _layers(family):
    rng = random.Random(0)
    opts, choice = params(family).options(), BLOCKS[family].choice
    return [choice(**{k: rng.choice(v) for k, v in opts.items()}) for _ in range(4)] + [
        choice(**{k: v[-1] for k, v in opts.items()})
    ]


def _channels(site):
    cin = site.cin if not site.first else site.cin - 8
    cout = site.cout if not site.first else site.cout - 8
    return (cin, cout) if site.first else (cout, cout)


@pytest.mark.parametrize("family", sorted(BLOCKS))
@pytest.mark.parametrize("case", CASES)
def test_extracted_block_matches_elastic_block(family, case):
    dims, cin_max, cout_max, stride, first, size = case
    site = Site(dims, cin_max, cout_max, stride, first, params(family))
    block = BLOCKS[family].elastic(site).eval()
    for cin, cout in [(cin_max, cout_max), _channels(site)]:
        x = torch.randn(2, cin, *(size,) * dims)
        for layer in _layers(family):
            with torch.no_grad():
                y = block(x, cout, layer)
                y_static = block.extract(cin, cout, layer).eval()(x)
            assert y.shape == (2, cout) + y.shape[2:]
            assert (y - y_static).abs().max() <= 1e-5


@pytest.mark.parametrize("family", sorted(BLOCKS))
def test_block_trains_and_only_used_weights_get_gradients(family):
    site = Site(2, 16, 16, 1, True, params(family))
    block = BLOCKS[family].elastic(site).train()
    layer = _layers(family)[0]
    cin, cout = 8, 8
    used = block.weights(cin, cout, layer)
    # which parameter elements the sliced weights are made of
    probe = sum(w.sum() for w in used.values() if w.is_floating_point() and w.requires_grad)
    probe.backward()
    allowed = {n: p.grad != 0 for n, p in block.named_parameters() if p.grad is not None}
    block.zero_grad(set_to_none=True)

    x = torch.randn(4, cin, 5, 5)
    block(x, cout, layer).square().mean().backward()
    for name, p in block.named_parameters():
        if p.grad is None:
            assert name not in allowed, f"{name} is used but got no gradient"
            continue
        assert name in allowed, f"{name} is not used but got a gradient"
        assert not (p.grad[~allowed[name]] != 0).any(), f"{name}: gradient outside the used slice"
        assert (p.grad != 0).any(), f"{name}: zero gradient"


def test_registry_rejects_duplicates():
    from search_spaces.registry import add_family

    with pytest.raises(ValueError, match="already registered"):
        add_family(BLOCKS["conv"])

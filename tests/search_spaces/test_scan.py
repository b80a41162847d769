import pytest
import torch
import torch.nn.functional as F

from search_spaces.blocks.ssm import sequential_scan
from search_spaces.standalone import chunked_scan


def _inputs(b, length, h, p, n, dtype=torch.float32):
    g = torch.Generator().manual_seed(length)
    x = torch.randn(b, length, h, p, generator=g, dtype=dtype)
    dt = F.softplus(torch.randn(b, length, h, generator=g, dtype=dtype))
    a = -torch.rand(h, generator=g, dtype=dtype) * 4 - 0.1
    bm = torch.randn(b, length, n, generator=g, dtype=dtype)
    cm = torch.randn(b, length, n, generator=g, dtype=dtype)
    return x, dt, a, bm, cm


@pytest.mark.parametrize("length", [1, 3, 8, 13, 16, 40, 67])
@pytest.mark.parametrize("chunk", [4, 16])
def test_chunked_scan_matches_recurrence(length, chunk):
    args = _inputs(2, length, 3, 4, 5)
    fast = chunked_scan(*args, chunk=chunk)
    ref = sequential_scan(*args)
    rel = (fast - ref).norm() / ref.norm()
    assert rel < 1e-4, f"relative error {rel:.2e}"


def test_chunked_scan_gradients_match_recurrence():
    args = [t.double().requires_grad_(t.is_floating_point()) for t in _inputs(1, 11, 2, 3, 4)]
    g_fast = torch.autograd.grad(chunked_scan(*args, chunk=4).square().sum(), args)
    g_ref = torch.autograd.grad(sequential_scan(*args).square().sum(), args)
    for a, b in zip(g_fast, g_ref, strict=True):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-8)


def test_strong_decay_stays_finite():
    x, dt, a, bm, cm = _inputs(1, 50, 2, 2, 3)
    y = chunked_scan(x, dt * 200, a, bm, cm, chunk=8)  # decays of exp(-800) within a chunk
    assert torch.isfinite(y).all()

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.search.pareto import dominates, hypervolume, non_dominated_sort


def brute_force_front(points):
    return sorted(i for i, p in enumerate(points) if not any(dominates(q, p) for q in points))


def brute_force_hypervolume(points, ref):
    """Exact: split space into the grid cells of all coordinates; sum cells dominated by some point."""
    axes = [sorted({p[d] for p in points} | {ref[d]}) for d in range(len(ref))]
    volume = 0.0
    for cell in itertools.product(*[range(len(a) - 1) for a in axes]):
        lo = [axes[d][i] for d, i in enumerate(cell)]
        hi = [axes[d][i + 1] for d, i in enumerate(cell)]
        if any(all(p[d] <= lo[d] for d in range(len(ref))) for p in points):
            volume += float(np.prod(np.subtract(hi, lo)))
    return volume


coords = st.integers(min_value=0, max_value=9).map(float)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(coords, coords, coords), min_size=1, max_size=9))
def test_non_dominated_sort_layers(points):
    pts = np.array(points)
    fronts = non_dominated_sort(pts)
    assert sorted(i for f in fronts for i in f) == list(range(len(pts)))
    assert sorted(fronts[0]) == brute_force_front(pts)
    for earlier, later in zip(fronts, fronts[1:], strict=False):  # each later point is dominated by an earlier one
        assert all(any(dominates(pts[i], pts[j]) for i in earlier) for j in later)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(coords, coords), min_size=1, max_size=10))
def test_hypervolume_2d_matches_brute_force(points):
    ref = np.array([10.0, 10.0])
    assert abs(hypervolume(np.array(points), ref) - brute_force_hypervolume(points, ref)) < 1e-9


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(coords, coords, coords), min_size=1, max_size=8))
def test_hypervolume_3d_matches_brute_force(points):
    ref = np.array([10.0, 10.0, 10.0])
    assert abs(hypervolume(np.array(points), ref) - brute_force_hypervolume(points, ref)) < 1e-9


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(coords, coords, coords, coords), min_size=1, max_size=6))
def test_hypervolume_4d_matches_brute_force(points):
    """Every objective the product scores at once (accuracy, latency, params, MACs) has a hypervolume."""
    ref = np.array([10.0] * 4)
    assert abs(hypervolume(np.array(points), ref) - brute_force_hypervolume(points, ref)) < 1e-9


def test_points_beyond_the_reference_add_nothing():
    assert hypervolume(np.array([[11.0, 0.0], [2.0, 2.0]]), np.array([10.0, 10.0])) == 64.0

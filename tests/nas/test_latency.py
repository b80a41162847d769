import json
import random

import numpy as np
import pytest
import torch

from nas.latency import HardwareProfile, LatencyPredictor, LatencyTable, Machine, TableError, build_table
from nas.latency.layers import arch_layers, space_layers
from nas.latency.predictor import FEATURES, fit_correction
from nas.latency.profiler import validate_table
from nas.latency.table import Entry, space_ref
from search_spaces import HybridSupernet, get_space

TINY = get_space("hybrid-tiny")
QUICK = {"warmup": 1, "repeats": 5, "threads": 1}


def profile(device="cpu", **kw) -> HardwareProfile:
    return HardwareProfile(name="test", device=device, machine=Machine.here(device), **(QUICK | kw))


def fake_table(space=TINY) -> LatencyTable:
    net = HybridSupernet.from_spec(space)
    rng = np.random.default_rng(0)
    entries = [Entry(layer=e, input_size=s, ms=float(rng.uniform(0.01, 1)), spread=0.0) for e, s in space_layers(net)]
    return LatencyTable(space=space_ref(space), profile=profile(), entries=entries)


def test_every_arch_layer_is_enumerated():
    net = HybridSupernet.from_spec(TINY)
    keys = {json.dumps([e, s], sort_keys=True) for e, s in space_layers(net)}
    rng = random.Random(0)
    for arch in [TINY.largest(), TINY.smallest()] + [TINY.sample(rng) for _ in range(100)]:
        for entry, size in arch_layers(net, arch):
            assert json.dumps([entry, size], sort_keys=True) in keys


def test_table_round_trip_and_key_mismatches(tmp_path):
    table = fake_table()
    path = tmp_path / "lut.json"
    table.save(path)
    again = LatencyTable.load(path)
    assert again == table
    with pytest.raises(TableError, match="built for space 'hybrid-tiny'"):
        LatencyPredictor(again, get_space("hybrid-small"))
    data = json.loads(path.read_text())
    (tmp_path / "v9.json").write_text(json.dumps(data | {"version": 9}))
    with pytest.raises(TableError, match="version 9"):
        LatencyTable.load(tmp_path / "v9.json")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(TableError, match="not a hybrid-nas-latency-table"):
        LatencyTable.load(tmp_path / "other.json")
    with pytest.raises(TableError, match="not found"):
        LatencyTable.load(tmp_path / "missing.json")


def test_predictor_is_the_sum_of_the_archs_entries():
    table = fake_table()
    predictor = LatencyPredictor(table, TINY)
    lookup = {json.dumps([e.layer, e.input_size], sort_keys=True): e.ms for e in table.entries}
    rng = random.Random(1)
    archs = [TINY.sample(rng) for _ in range(20)]
    by_hand = [sum(lookup[json.dumps([e, s], sort_keys=True)] for e, s in arch_layers(predictor.supernet, a))
               for a in archs]
    assert np.allclose(predictor.predict_many(archs), by_hand)
    assert predictor(archs[0]) == pytest.approx(by_hand[0])


def test_correction_recovers_a_linear_model():
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.uniform(0, 2, (60, 4)), rng.integers(3, 12, 60), np.ones(60)])
    truth = np.array([1.2, 0.9, 1.5, 1.0, 0.02, 0.3])
    fitted = fit_correction(rows, rows @ truth)
    assert np.allclose([fitted.coefficients[f] for f in FEATURES], truth, atol=1e-6)


def test_missing_entry_is_a_clear_error():
    table = fake_table()
    table.entries = table.entries[:3]
    with pytest.raises(TableError, match="no entry for layer"):
        LatencyPredictor(table, TINY)(TINY.largest())


def test_profiler_builds_resumes_and_validates_tiny(tmp_path):
    out = tmp_path / "lut.json"
    seen = []

    def stop_early(phase, n, total):
        seen.append((phase, n, total))
        if phase == "layers" and n == 60:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_table(TINY, profile(), out, calibration=6, progress=stop_early, checkpoint_every=20)
    partial = LatencyTable.load(out)
    assert len(partial.entries) == 60  # saved at the checkpoint before the interruption
    resumed = []
    table = build_table(TINY, profile(), out, calibration=6, progress=lambda *a: resumed.append(a))
    assert resumed[0] == ("layers", 60, 133)  # starts where the last run stopped
    assert len(table.entries) == len(list(space_layers(HybridSupernet.from_spec(TINY)))) == 133
    assert table.correction.networks == 6 and all(e.ms > 0 for e in table.entries)
    report = validate_table(table, TINY, samples=6, repeat_for_noise=2, plot=tmp_path / "plot.png")
    assert {"mape", "rmse_ms", "within_5pct", "within_10pct", "kendall_tau", "spearman_rho", "n"} <= set(report)
    assert report["n"] == 6 and (tmp_path / "plot.png").stat().st_size > 0
    with pytest.raises(TableError, match="another profile"):
        build_table(TINY, profile(threads=2), out)


def test_table_drives_the_latency_objective(tmp_path):
    from nas.pipeline import run_search
    from tests.nas.conftest import tiny_config

    path = tmp_path / "lut.json"
    space = TINY.with_input((1, 8, 8), 10)
    table = fake_table(space)
    table.save(path)
    config = tiny_config(objectives=["accuracy", "latency_ms"], hardware=str(path), constraints={"latency_ms": 2.5},
                         finalize={"enabled": False})
    result = run_search(config, None, tmp_path / "run")
    predictor = LatencyPredictor(table, space)
    for c in result.candidates:
        assert c.metrics["latency_ms"] == pytest.approx(predictor(space.parse(c.arch)))
    assert all(c.metrics["latency_ms"] <= 2.5 for c in result.front)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA timing path: runs where a GPU is present")
def test_cuda_timing_path(tmp_path):
    table = build_table(TINY, profile("cuda:0"), tmp_path / "cuda-lut.json", calibration=3)
    assert all(e.ms > 0 for e in table.entries)

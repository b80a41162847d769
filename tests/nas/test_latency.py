import json
import random
import time
import warnings

import numpy as np
import pytest
import torch

from nas.latency import HardwareProfile, LatencyPredictor, LatencyTable, Machine, TableError, build_table
from nas.latency.layers import arch_layers, missing_layers, space_layers
from nas.latency.predictor import check_covers, fit_correction
from nas.latency.profiler import covering_archs, validate_table
from nas.latency.table import Entry, OverheadPoint, layer_key, space_ref
from nas.latency.timing import Timed, fast_mean, paired
from search_spaces import get_space

TINY = get_space("hybrid-tiny")
QUICK = {"warmup": 1, "repeats": 6, "block": 3, "cover": 1, "threads": 1}


def profile(device="cpu", **kw) -> HardwareProfile:
    return HardwareProfile(name="test", device=device, machine=Machine.here(device), **(QUICK | kw))


def fake_table(space=TINY) -> LatencyTable:
    rng = np.random.default_rng(0)
    entries = [Entry(layer=e, input_size=s, ms=float(rng.uniform(0.01, 1)), spread=0.0) for e, s in space_layers(space)]
    return LatencyTable(spaces=[space_ref(space)], profile=profile(), entries=entries)


def test_every_arch_layer_is_enumerated():
    keys = {json.dumps([e, s], sort_keys=True) for e, s in space_layers(TINY)}
    rng = random.Random(0)
    for arch in [TINY.largest(), TINY.smallest()] + [TINY.sample(rng) for _ in range(100)]:
        for entry, size in arch_layers(TINY, arch):
            assert json.dumps([entry, size], sort_keys=True) in keys


def test_table_round_trip_and_key_mismatches(tmp_path):
    table = fake_table()
    path = tmp_path / "lut.json"
    table.save(path)
    again = LatencyTable.load(path)
    assert again == table
    small = get_space("hybrid-small")
    with pytest.raises(TableError, match="no entry for layer"):  # keyed by layers: another space's are missing
        LatencyPredictor(again, small)(small.largest())
    with pytest.raises(TableError, match=r"lacks \d+ of the layers of space 'hybrid-small'"):
        check_covers(again, small)
    check_covers(again, TINY)
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
    by_hand = [sum(lookup[json.dumps([e, s], sort_keys=True)] for e, s in arch_layers(predictor.space, a))
               for a in archs]
    assert np.allclose(predictor.predict_many(archs), by_hand)
    assert predictor(archs[0]) == pytest.approx(by_hand[0])


def test_correction_recovers_the_overhead():
    rng = np.random.default_rng(0)
    points = []
    for _ in range(80):
        conv, attention = (int(v) for v in rng.integers(1, 8, 2))
        layer_sum = float(rng.uniform(0.5, 3))
        measured = layer_sum + 0.05 + 0.012 * (conv + attention) + 0.02 * attention
        points.append(OverheadPoint(layer_sum=layer_sum, layers=conv + attention, measured=measured,
                                    kinds={"conv": conv, "attention": attention}))
    fitted = fit_correction(points, ridge=1e-9)
    overhead = [fitted.constant + (fitted.per_layer + fitted.per_kind["conv"]) * 2
                + (fitted.per_layer + fitted.per_kind["attention"]) * 3]
    assert overhead == pytest.approx([0.05 + 0.012 * 5 + 0.02 * 3], rel=1e-6) and fitted.networks == 80
    shared = fit_correction(points)  # the ridge pulls the families' terms towards the shared per-layer cost
    assert abs(shared.per_kind["conv"]) < abs(fitted.per_kind["conv"]) + 1e-12


def test_predictor_adds_the_overhead_and_the_calibration():
    table = fake_table()
    table.correction.constant, table.correction.per_layer = 0.1, 0.01
    table.correction.per_kind = {"conv": 0.005}
    predictor = LatencyPredictor(table, TINY)
    arch = TINY.largest()
    sites = predictor._walk(arch)
    by_hand = (sum(table.lookup()[layer_key(s.config, s.input_size)] for s in sites) + 0.1 + 0.01 * len(sites)
               + 0.005 * sum(s.kind == "conv" for s in sites))
    assert predictor(arch) == pytest.approx(by_hand)
    assert predictor.predict_many([arch, TINY.smallest()])[0] == pytest.approx(by_hand)
    assert LatencyPredictor(table, TINY, scale=1.25)(arch) == pytest.approx(1.25 * by_hand)


def test_fast_mean_keeps_the_fastest_runs_and_adds_up():
    times = np.array([[1.0, 2.0], [5.0, 5.0], [1.5, 1.0], [0.9, 3.0]])  # totals 3, 10, 2.5, 3.9
    per_step = fast_mean(times, keep=0.5)
    assert per_step == pytest.approx([1.25, 1.5])  # runs 2 and 0
    assert per_step.sum() == pytest.approx(np.mean([3.0, 2.5]))  # steps add up to the network's value


def _spin(ms: float) -> None:
    end = time.perf_counter() + ms / 1e3
    while time.perf_counter() < end:
        pass


def test_reference_pairing_cancels_a_machine_slowdown():
    """A host that gets 2x slower halfway makes raw timings jump; the ratio to the interleaved
    reference does not."""
    speed = {"factor": 1.0}

    def step(ms):
        return lambda h: _spin(ms * speed["factor"]) or h

    target, reference = [step(0.3), step(0.2)], [step(0.4)]
    prof = profile(repeats=20, block=5, warmup=0)
    x = torch.zeros(1)
    ratios, raw = [], []
    for factor in (1.0, 2.0):
        speed["factor"] = factor
        ms, ref_now = paired(Timed(target, x), Timed(reference, x), prof)
        raw.append(ms.sum())
        ratios.append(ms.sum() / ref_now)
    assert raw[1] / raw[0] == pytest.approx(2.0, rel=0.25)
    assert ratios[1] == pytest.approx(ratios[0], rel=0.1) and ratios[0] == pytest.approx(0.5 / 0.4, rel=0.15)


def test_cover_times_every_layer_in_enough_networks():
    wanted = {layer_key(e, s) for e, s in space_layers(TINY)}
    archs = covering_archs(TINY, dict.fromkeys(wanted, 2))
    uses: dict[str, int] = {}
    for arch in archs:
        for key in {layer_key(e, s) for e, s in arch_layers(TINY, arch)}:
            uses[key] = uses.get(key, 0) + 1
    assert set(uses) == wanted and min(uses.values()) >= 2
    assert len(archs) == len({a.id for a in archs}) and len(archs) < len(wanted)
    assert _cover_ids_in_a_new_process() == [a.id for a in archs]  # a resumed build picks the same cover


def _cover_ids_in_a_new_process() -> list[str]:
    """The cover computed by another interpreter, whose string hashing (set order) differs."""
    import os
    import subprocess
    import sys

    code = ("from nas.latency.profiler import covering_archs; from nas.latency.layers import space_layers; "
            "from nas.latency.table import layer_key; from search_spaces import get_space; "
            "space = get_space('hybrid-tiny'); "
            "wanted = {layer_key(e, s): 2 for e, s in space_layers(space)}; "
            "print(' '.join(a.id for a in covering_archs(space, wanted)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=os.environ | {"PYTHONHASHSEED": "12345"})
    return out.stdout.split()


def test_missing_entry_is_a_clear_error():
    table = fake_table()
    table.entries = table.entries[:3]
    with pytest.raises(TableError, match="no entry for layer"):
        LatencyPredictor(table, TINY)(TINY.largest())


def test_profiler_builds_resumes_and_validates_tiny(tmp_path):
    out = tmp_path / "lut.json"

    def stop_early(phase, n, total):
        if phase == "networks" and n == 25:
            raise KeyboardInterrupt

    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        build_table(TINY, profile(), out, calibration=6, progress=stop_early, checkpoint_every=10)
    partial = LatencyTable.load(out)
    assert len(partial.networks) == 20 and partial.reference is not None  # saved at the last checkpoint
    resumed = []
    table = build_table(TINY, profile(), out, calibration=6, progress=lambda *a: resumed.append(a))
    assert time.perf_counter() - started < 60
    networks = resumed[0][2]  # what the partial table still lacked
    assert resumed[0] == ("networks", 0, networks) and table.networks[:20] == partial.networks
    assert len(table.networks) == 20 + networks == len(set(table.networks))
    assert table.reference == partial.reference  # the unit is measured once per table
    assert len(table.entries) == len(list(space_layers(TINY))) == 133
    assert all(e.ms > 0 and len(e.samples) >= 1 for e in table.entries)
    assert table.correction.networks == 6
    report = validate_table(table, TINY, samples=6, repeat_for_noise=2, plot=tmp_path / "plot.png")
    assert {"mape", "rmse_ms", "within_5pct", "within_10pct", "kendall_tau", "spearman_rho", "n"} <= set(report)
    assert report["n"] == 6 and report["noise_floor"]["networks"] == 2 and (tmp_path / "plot.png").stat().st_size > 0
    assert {"within_10pct", "kendall_tau", "mape"} <= set(report["raw"])  # beside the calibrated figures
    slowdowns = [n["slowdown"] for n in report["networks"]]
    raw_error = [abs(n["predicted_ms"] - n["measured_ms"] * f) / (n["measured_ms"] * f)
                 for n, f in zip(report["networks"], slowdowns, strict=True)]
    assert report["raw"]["mape"] == pytest.approx(float(np.mean(raw_error)))
    with pytest.raises(TableError, match="another profile"):
        build_table(TINY, profile(threads=2), out)


def test_the_overhead_networks_are_measured_spread_over_the_layer_timings(tmp_path, monkeypatch):
    from nas.latency.profiler import Measurer, calibration_archs, spread

    assert spread(3, 10) == {1: [0], 4: [1], 7: [2]} and spread(5, 2) == {1: [0, 1, 2], 2: [3, 4]}
    assert spread(4, 0) == {}  # nothing to spread over: all are measured after
    calls = []
    for name in ("layer_ms", "network_ms"):
        timed = getattr(Measurer, name)
        monkeypatch.setattr(Measurer, name, lambda self, *a, _t=timed, _n=name: calls.append(_n) or _t(self, *a))
    table = build_table(TINY, profile(), tmp_path / "lut.json", calibration=4)
    layers = calls.count("layer_ms")
    assert layers > 8 and calls.count("network_ms") == 4 == table.correction.networks
    networks_before = [calls[:i].count("layer_ms") for i, c in enumerate(calls) if c == "network_ms"]
    assert networks_before == [k * layers // 4 + 1 for k in range(4)]  # one after every quarter's first network
    assert [p.arch for p in table.points] == [a.to_dict() for a in calibration_archs(TINY, 4)]  # stored for refits


def test_the_overhead_is_fitted_down_to_the_spaces_smallest_networks():
    from nas.latency.profiler import calibration_archs

    archs = calibration_archs(TINY, 20)
    smallest = {TINY.smallest().id} | {TINY.smallest(f).id for f in TINY.families()}
    assert len(archs) == 20 and archs[0] == TINY.smallest() and {a.id for a in archs[:len(smallest)]} == smallest
    assert calibration_archs(TINY, 20) == archs  # a seeded choice: the same networks every build
    few = calibration_archs(TINY, 4)  # a quarter of them at most: the smallest overall, then random ones
    assert len(few) == 4 and few[0] == TINY.smallest() and few[1:] == archs[len(smallest):len(smallest) + 3]


def test_build_for_given_archs_only(tmp_path):
    archs = [TINY.largest(), TINY.smallest()]
    table = build_table(TINY, profile(), tmp_path / "lut.json", calibration=0, archs=archs)
    assert {layer_key(e.layer, e.input_size) for e in table.entries} == {
        layer_key(e, s) for a in archs for e, s in arch_layers(TINY, a)}
    assert LatencyPredictor(table, TINY)(archs[0]) > 0


def test_onnxruntime_backend_times_layer_sessions(tmp_path):
    rng = random.Random(0)  # an arch with a bidirectional SSM layer, whose reversal the exporter notes at length
    arch = next(a for a in (TINY.sample(rng) for _ in range(100))
                if any(e.get("bidirectional") for e, _ in arch_layers(TINY, a)))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        table = build_table(TINY, profile(backend="onnxruntime"), tmp_path / "ort.json", calibration=2, archs=[arch])
    assert not [w for w in said if "Constant folding" in str(w.message)]  # a table build prints only its progress
    assert len(table.entries) == len(arch_layers(TINY, arch))
    assert all(e.ms > 0 for e in table.entries) and table.correction.networks == 1  # calibrated on the given arch


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
    assert all(e.ms > 0 for e in table.entries) and len(table.entries) == 133
    report = validate_table(table, TINY, samples=4, repeat_for_noise=2)
    assert report["n"] == 4


def test_cli_predicts_one_arch_or_a_list(tmp_path):
    from typer.testing import CliRunner

    from nas.cli import app

    table = fake_table()
    table.save(tmp_path / "lut.json")
    predictor = LatencyPredictor(table, TINY)
    archs = [TINY.largest(), TINY.smallest()]
    (tmp_path / "one.json").write_text(json.dumps({"arch": archs[0].to_dict(), "format": "export"}))
    (tmp_path / "many.jsonl").write_text("\n".join(a.to_json() for a in archs))
    runner = CliRunner()
    one = runner.invoke(app, ["latency", "predict", str(tmp_path / "lut.json"), str(tmp_path / "one.json")])
    assert one.exit_code == 0 and json.loads(one.stdout)["latency_ms"] == pytest.approx(predictor(archs[0]))
    many = runner.invoke(app, ["latency", "predict", str(tmp_path / "lut.json"), str(tmp_path / "many.jsonl")])
    lines = [json.loads(line) for line in many.stdout.splitlines()]
    assert [r["arch_id"] for r in lines] == [a.id for a in archs]
    assert [r["latency_ms"] for r in lines] == pytest.approx([predictor(a) for a in archs])
    bad = runner.invoke(app, ["latency", "predict", str(tmp_path / "lut.json"), str(tmp_path / "missing.json")])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def _quick_table(tmp_path, space=TINY):
    out = tmp_path / "lut.json"
    build_table(space, profile(), out, calibration=6)
    return out


def test_one_table_serves_a_retargeted_space_after_measuring_only_its_missing_layers(tmp_path):
    from nas.latency import search_predictor
    from nas.latency.for_search import EXTENSION_CALIBRATION

    out = _quick_table(tmp_path)
    before = LatencyTable.load(out)
    retargeted = TINY.with_input((3, 16, 16), 5)  # new stem channels, sizes and head: layers the table lacks
    lacking = missing_layers(before, retargeted)
    assert lacking and len(lacking) < len(list(space_layers(retargeted))) + 1
    notes = []
    predictor = search_predictor(out, retargeted, calibrate=False, note=notes.append)
    after = LatencyTable.load(out)
    assert not missing_layers(after, retargeted) and not missing_layers(after, TINY)  # serves both spaces now
    assert len(after.entries) == len(before.entries) + len(lacking)
    assert after.networks[: len(before.networks)] == before.networks and after.reference == before.reference
    assert [s.name for s in after.spaces] == ["hybrid-tiny", "hybrid-tiny"] and "measuring the" in notes[0]
    assert len(after.points) == len(before.points) + EXTENSION_CALIBRATION  # refitted with the new space's networks
    assert predictor(retargeted.largest()) > predictor(retargeted.smallest()) > 0
    unchanged = LatencyTable.load(out).model_dump()
    search_predictor(out, retargeted, calibrate=False)  # nothing left to measure: the file is not rewritten
    assert LatencyTable.load(out).model_dump() == unchanged


def test_two_searches_extending_one_table_measure_its_layers_once(tmp_path):
    import shutil
    import threading

    from nas.latency import search_predictor

    out = _quick_table(tmp_path)
    single = shutil.copy(out, tmp_path / "single.json")
    retargeted = TINY.with_input((1, 12, 12), 3)
    search_predictor(single, retargeted, calibrate=False)  # what one search alone measures
    errors = []

    def search():
        try:
            search_predictor(out, retargeted, calibrate=False)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=search) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    table = LatencyTable.load(out)
    assert not errors and not missing_layers(table, retargeted)
    assert len(table.networks) == len(set(table.networks)) == len(LatencyTable.load(single).networks)


def test_a_table_bound_to_another_machine_is_not_extended_here(tmp_path):
    from nas.latency import search_predictor

    out = _quick_table(tmp_path)
    table = LatencyTable.load(out)
    table.profile = table.profile.model_copy(update={"machine": Machine(cpu="another CPU", torch="2.0")})
    table.save(out)
    with pytest.raises(TableError, match="this host is not it"):
        search_predictor(out, TINY.with_input((1, 12, 12), 3))
    assert search_predictor(out, TINY, note=lambda _t: None).scale == 1.0  # covered: usable, not calibrated


def test_calibration_measures_the_reference_once_in_a_while(tmp_path, monkeypatch):
    from nas.latency import calibration
    from nas.latency.profiler import Measurer

    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    table = LatencyTable.load(_quick_table(tmp_path))
    calls = []
    real = Measurer.speed_now
    monkeypatch.setattr(Measurer, "speed_now", lambda self: calls.append(1) or real(self))
    first = calibration.host_speed(table)
    assert 0.2 < first < 5 and calibration.host_speed(table) == first and len(calls) == 1  # cached
    assert calibration.host_speed(table, max_age_s=0) > 0 and len(calls) == 2  # stale: measured again


def test_the_front_is_remeasured_and_refines_the_overhead(tmp_path):
    from nas.latency import remeasure_front

    out = _quick_table(tmp_path)
    archs = [TINY.largest(), TINY.smallest()]
    rows = remeasure_front(out, TINY, archs)
    table = LatencyTable.load(out)
    assert [r["arch_id"] for r in rows] == [a.id for a in archs]
    assert all(r["measured_ms"] > 0 and r["predicted_ms"] > 0 for r in rows)
    assert rows[0]["measured_ms"] > rows[1]["measured_ms"]  # the largest arch is slower
    assert [p.source for p in table.points[-2:]] == ["device", "device"] and table.correction.networks == 8


def test_a_version_2_table_is_upgraded(tmp_path):
    from nas.latency.table import space_fingerprint

    arch = TINY.smallest()
    v2 = {"format": "hybrid-nas-latency-table", "version": 2,
          "space": {"name": "hybrid-tiny", "version": 1, "input_shape": list(TINY.input_shape),
                    "fingerprint": space_fingerprint(TINY)},
          "profile": profile().model_dump(mode="json"), "entries": [], "networks": [],
          "reference": {"arch": arch.to_dict(), "ms": 0.5}, "correction": {"constant": 0.1, "per_layer": 0.01}}
    (tmp_path / "v2.json").write_text(json.dumps(v2))
    table = LatencyTable.load(tmp_path / "v2.json")
    assert table.reference.plan == [s[0] for s in arch_layers(TINY, arch)] and table.reference.ms == 0.5
    assert table.spaces[0].name == "hybrid-tiny" and table.correction.constant == 0.1
    (tmp_path / "v2b.json").write_text(json.dumps(v2 | {"space": v2["space"] | {"fingerprint": "0"}}))
    with pytest.raises(TableError, match="no longer matches"):
        LatencyTable.load(tmp_path / "v2b.json")


def test_context_terms_are_recovered_from_samples_in_mixed_contexts():
    """Samples of each layer after layers of various kinds, with a (scale, offset) per (previous kind > kind):
    the fit recovers every layer's latency in every context, and the predictor uses the actual predecessor."""
    rng = np.random.default_rng(0)
    true_ms = {i: float(rng.uniform(0.1, 1.0)) for i in range(30)}
    kinds = {i: ("conv", "attention", "ssm")[i % 3] for i in true_ms}
    truth = {"ssm>conv": (1.10, 0.02), "conv>conv": (0.95, -0.005), "ssm>attention": (1.05, 0.01)}

    def in_truth(i, after):
        scale, offset = truth.get(f"{after}>{kinds[i]}", (1.0, 0.0))
        return true_ms[i] * scale + offset

    entries = []
    for i in true_ms:
        entry = Entry(layer={"type": kinds[i], "id": i}, input_size=8, ms=0.0)
        for after in ("ssm", "conv", "attention", "ssm", "conv", "attention"):
            entry.add(in_truth(i, after) * float(rng.normal(1, 0.002)), after)
        entries.append(entry)
    table = LatencyTable(profile=profile(), entries=entries)
    table.fit_contexts()
    for e in table.entries:
        for after in ("ssm", "conv", "attention"):
            assert table.in_context(e.ms, after, e.layer["type"]) == pytest.approx(in_truth(e.layer["id"], after),
                                                                                  rel=0.01)
    assert table.in_context(0.5, "ssm", "conv") > table.in_context(0.5, "attention", "conv") > table.in_context(
        0.5, "conv", "conv")


ALLOCATION_PROBE = """
import ctypes, sys
import torch
from nas.latency.profiler import Measurer
from nas.latency.profile import HardwareProfile
from nas.latency.table import Reference
from search_spaces import get_space, plan

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
space = get_space("hybrid-tiny")
arch = space.smallest()
reference = Reference(plan=plan(space, arch), input_shape=list(space.input_shape), ms=1.0)
Measurer(HardwareProfile(name="probe", allocator=sys.argv[1], repeats=2, warmup=0, threads=1), reference)
before = libc.mallinfo2().hblkhd
block = torch.empty(8 << 20, dtype=torch.uint8)  # an 8 MiB activation
print((libc.mallinfo2().hblkhd - before) >> 20)
"""


def test_a_steady_allocator_profile_serves_large_tensors_from_the_heap():
    """Measured with the profile's 'steady' regime, an 8 MiB tensor is heap, not fresh mmapped pages (which
    glibc would otherwise choose by the process's past); 'as-is' leaves glibc's default (mmap above 128 KiB)."""
    import subprocess
    import sys

    def mmapped_mib(regime: str) -> int:
        out = subprocess.run([sys.executable, "-c", ALLOCATION_PROBE, regime], capture_output=True, text=True,
                             check=True, timeout=300)
        return int(out.stdout.split()[-1])

    assert mmapped_mib("as-is") == 8
    assert mmapped_mib("steady") == 0
    assert HardwareProfile(name="p").allocator == "steady"


def test_a_table_saved_before_the_allocator_setting_reads_as_measured_as_is(tmp_path):
    data = json.loads(fake_table().model_dump_json())
    del data["profile"]["allocator"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert LatencyTable.load(tmp_path / "old.json").profile.allocator == "as-is"

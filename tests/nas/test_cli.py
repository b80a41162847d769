import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from nas.cli import app
from nas.train import CHECKPOINT, load_checkpoint

runner = CliRunner()
NAS = [sys.executable, "-m", "nas.cli"]


def test_spaces_commands():
    listed = runner.invoke(app, ["spaces", "list"])
    assert listed.exit_code == 0 and "hybrid-small" in listed.output
    shown = runner.invoke(app, ["spaces", "show", "hybrid-tiny"])
    assert json.loads(shown.output)["name"] == "hybrid-tiny"
    sampled = runner.invoke(app, ["spaces", "sample", "hybrid-small", "--seed", "4", "--run"])
    info = json.loads(sampled.output)
    assert len(info["arch_id"]) == 64 and info["output_shape"] == [2, 10] and info["macs"] > 0


def test_unknown_space_is_a_clear_error():
    out = runner.invoke(app, ["spaces", "show", "nope"])
    assert out.exit_code == 2 and "unknown search space 'nope'" in out.output and "Traceback" not in out.output


def test_bad_search_configs_are_clear_errors(tmp_path):
    cases = {
        "missing.yaml": None,
        "broken.yaml": "space: [\n",
        "field.yaml": "space: hybrid-tiny\ndataset: {name: digits}\ntrain: {steps: -1}\n",
        "latency.yaml": "space: hybrid-tiny\ndataset: {name: digits}\nobjectives: [accuracy, latency_ms]\n",
        "data.yaml": "space: hybrid-tiny\ndataset: {name: npz, path: nothere.npz}\n",
    }
    expected = {"missing.yaml": "not found", "broken.yaml": "malformed YAML", "field.yaml": "train.steps",
                "latency.yaml": "latency table", "data.yaml": "npz file not found"}
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        out = runner.invoke(app, ["search", str(tmp_path / name), "--out", str(tmp_path / "o")])
        assert out.exit_code == 2, (name, out.output)
        assert expected[name] in out.output and "Traceback" not in out.output, (name, out.output)


def test_killed_search_resumes_from_its_last_checkpoint(tmp_path):
    config = {
        "space": "hybrid-tiny", "dataset": {"name": "digits"},
        "train": {"steps": 400, "batch_size": 16, "checkpoint_every": 10},
        "search": {"evaluations": 6, "population": 2}, "finalize": {"enabled": True, "top_k": 1, "epochs": 1},
        "trust": {"enabled": False},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*NAS, "search", str(path), "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = out / CHECKPOINT
    deadline = time.time() + 120
    while time.time() < deadline and (not ckpt.exists() or load_checkpoint(ckpt)["step"] < 20):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = load_checkpoint(ckpt)["step"]
    assert 20 <= step < 400, "the run should be killed mid-training"
    done = subprocess.run([*NAS, "search", str(path), "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"resumed supernet training from step {step}" in done.stderr
    assert load_checkpoint(ckpt)["step"] == 400
    assert json.loads((out / "result.json").read_text())["front"]
    assert Path(out / "supernet.safetensors").exists()

"""Exports reproduce the model: standalone model.py in a fresh interpreter, ONNX in onnxruntime, TorchScript."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from nas.export import ExportError, export_candidate
from nas.export.formats import write_onnx, write_pytorch, write_torchscript
from nas.export.model import export_network
from nas.pipeline import run_search
from search_spaces import HybridSupernet, get_space
from tests.nas.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]

# Prepended to a script: makes this project unimportable (a test fails if exported code needs it) and
# puts the export folder first on the path.
ISOLATED = """
import importlib.util, sys
sys.path = [p for p in sys.path if p and not (p.startswith({root!r}) and "site-packages" not in p)]
sys.meta_path = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                 and "editable" not in repr(f).lower()]
assert importlib.util.find_spec("search_spaces") is None and importlib.util.find_spec("nas") is None
sys.path.insert(0, {folder!r})
"""

# Runs model.py on saved inputs.
RUNNER = ISOLATED + """
import numpy as np, torch
from model import load_model, INPUT_SHAPE
model = load_model()
for name in {names!r}:
    x = torch.from_numpy(np.load({folder!r} + "/" + name + ".in.npy"))
    with torch.no_grad():
        np.save({folder!r} + "/" + name + ".out.npy", model(x).numpy())
print("ok", INPUT_SHAPE)
"""


def check_exports(net, info, expected_fn, folder: Path) -> None:
    """model.py (fresh process), ONNX (batch 1 and 7) and TorchScript all match `expected_fn(x)`."""
    shape = tuple(info["input_shape"])
    write_pytorch(net, info, folder)
    inputs = {f"b{b}": torch.rand(b, *shape) * 2 for b in (1, 7)}
    for name, x in inputs.items():
        np.save(folder / f"{name}.in.npy", x.numpy())
    script = RUNNER.format(root=str(ROOT), folder=str(folder), names=list(inputs))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/", timeout=300)
    assert done.returncode == 0, done.stderr
    onnx_path = write_onnx(net, inputs["b1"], folder / "model.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    scripted = torch.jit.load(str(write_torchscript(net, inputs["b7"], folder / "model.pt")))
    for name, x in inputs.items():
        expected = expected_fn(x)
        standalone = np.load(folder / f"{name}.out.npy")
        assert np.abs(standalone - expected).max() <= 1e-5, "model.py differs"
        onnx_out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        assert onnx_out.shape == expected.shape and np.abs(onnx_out - expected).max() <= 1e-4, "onnx differs"
        with torch.no_grad():
            assert np.abs(scripted(x).numpy() - expected).max() <= 1e-5, "torchscript differs"


def info_for(space, arch, mean):
    return {"arch_id": arch.id, "arch": arch.to_dict(), "metrics": {"accuracy": 0.5},
            "space": {"name": space.name, "version": space.version}, "input_shape": list(space.input_shape),
            "normalization": {"mean": mean, "std": [0.5] * len(mean)}, "hardware": None}


@pytest.mark.parametrize("which", ["all-three-types", "smallest"])
@pytest.mark.parametrize("name", ["hybrid-small", "hybrid-seq"])
def test_supernet_subnet_exports_match_the_supernet(tmp_path, name, which):
    space = get_space(name)
    net = HybridSupernet.from_spec(space).eval()
    if which == "smallest":
        arch = space.smallest()
    else:
        data = space.largest().to_dict()
        data["stages"][1]["layers"] = [{"type": "conv", "kernel": 5, "expand": 2, "se": True},
                                       {"type": "ssm", "state": 8, "expand": 2},
                                       {"type": "attention", "heads": 2, "mlp_ratio": 2}]
        arch = space.parse(data)
        assert set(arch.layer_types()) == {"conv", "attention", "ssm"}
    mean = [0.25] * space.input.channels
    exported = export_network(net, arch, mean, [0.5] * len(mean))

    def supernet_output(x):
        with torch.no_grad():
            return net((x - 0.25) / 0.5, arch).numpy()

    check_exports(exported, info_for(space, arch, mean), supernet_output, tmp_path)


def _sequence_npz(path: Path) -> Path:
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 64)
    y = np.arange(240) % 4
    x = np.sin(2 * np.pi * (y[:, None] + 1) * t) + 0.3 * rng.standard_normal((240, 64))
    np.savez(path, x=x.astype(np.float32), y=y)
    return path


@pytest.mark.parametrize("space_name", ["hybrid-small", "hybrid-seq"])
def test_every_front_arch_of_a_search_exports(tmp_path, space_name):
    dataset = {"name": "digits"} if space_name == "hybrid-small" else {
        "name": "npz", "path": str(_sequence_npz(tmp_path / "seq.npz"))}
    config = tiny_config(space=space_name, dataset=dataset, train={"steps": 4},
                         search={"evaluations": 6, "population": 3}, finalize={"enabled": False})
    result = run_search(config, None, tmp_path / "run")
    result_path = tmp_path / "run" / "result.json"
    from nas.export import load_export_model

    for cand in result.front:
        net, shape = load_export_model(result, tmp_path / "run", cand)
        info = json.loads(export_candidate(result_path, cand.arch_id, "json", tmp_path / f"{cand.arch_id}.json")
                          .read_text())
        assert info["arch_id"] == cand.arch_id and info["metrics"] == cand.metrics
        folder = export_candidate(result_path, cand.arch_id, "pytorch", tmp_path / cand.arch_id[:8])

        def saved_output(x, net=net):
            with torch.no_grad():
                return net(x).numpy()

        check_exports(net, info, saved_output, folder)
        assert info["input"]["dtype"] == "float32" and info["input"]["shape"] == ["batch", *shape]
        if dataset["name"] == "digits":
            assert "/ 16.0" in info["input"]["transform"]
            assert readme_example_accuracy(folder) == pytest.approx(cand.metrics["test_accuracy"], abs=1.5 / 270)
    import onnx

    onnx_file = export_candidate(result_path, result.front[0].arch_id, "onnx", tmp_path / "front0.onnx")
    meta = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert json.loads(meta["input"]) == info["input"]  # every candidate of a search takes the same input
    assert json.loads(meta["input"])["layout"].startswith("(batch, channels")



def readme_example_accuracy(folder: Path) -> float:
    """Run the export README's example as written, without this project importable; the accuracy it prints."""
    readme = (folder / "README.md").read_text()
    example = readme.split("Scoring it on the search's test split:")[1].split("```python\n")[1].split("```")[0]
    script = ISOLATED.format(root=str(ROOT), folder=str(folder)) + example
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=folder, timeout=300)
    assert done.returncode == 0, done.stderr
    return float(done.stdout.split("test accuracy")[1].split()[0])


def test_bundle_and_errors(tmp_path):
    config = tiny_config(train={"steps": 2}, search={"evaluations": 3, "population": 2},
                         finalize={"enabled": False})
    result = run_search(config, None, tmp_path / "run")
    path = tmp_path / "run" / "result.json"
    off_front = next((c for c in result.candidates if c.arch_id not in {f.arch_id for f in result.front}), None)
    cand = off_front or result.front[0]
    bundle = export_candidate(path, cand.arch_id[:10], "bundle")  # a unique prefix works
    assert bundle.name == f"{cand.arch_id[:16]}-bundle.zip"
    names = zipfile.ZipFile(bundle).namelist()
    assert {"pytorch/model.py", "pytorch/weights.safetensors", f"{cand.arch_id[:16]}.onnx"} <= set(names)
    with pytest.raises(ExportError, match="not a candidate"):
        export_candidate(path, "0" * 64, "json")
    with pytest.raises(ExportError, match="unknown export format"):
        export_candidate(path, cand.arch_id, "tflite")
    with pytest.raises(ExportError, match="not found"):
        export_candidate(tmp_path / "nothing.json", cand.arch_id, "json")

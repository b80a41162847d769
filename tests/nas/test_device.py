"""Device and precision handling: CPU everywhere; the CUDA paths where a GPU is present."""

import pytest
import torch

from nas.device import DeviceError, amp_dtype, resolve_device
from nas.schemas import SearchConfig
from search_spaces import UserError

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: runs where a GPU is present")


def test_auto_and_cpu_resolve_here():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert amp_dtype(torch.device("cpu"), "auto") is None  # fp32 on a CPU unless asked
    assert amp_dtype(torch.device("cpu"), "bf16") is torch.bfloat16


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a CPU-only machine gives")
def test_a_missing_gpu_is_a_clear_error_before_any_work(tmp_path):
    from nas.pipeline import run_search
    from tests.nas.conftest import tiny_config

    with pytest.raises(DeviceError, match="no CUDA device"):
        resolve_device("cuda:1")
    with pytest.raises(UserError, match="no CUDA device"):
        run_search(tiny_config(compute={"device": "cuda"}), None, tmp_path / "run")
    assert not (tmp_path / "run" / "train_checkpoint.pt").exists()


def test_config_refuses_unknown_devices():
    with pytest.raises(ValueError):
        SearchConfig.model_validate({"dataset": {"name": "digits"}, "compute": {"device": "tpu"}})


def test_bf16_autocast_search_on_cpu(tmp_path, monkeypatch):
    """The autocast path (loss in fp32, weights fp32) trains, fine-tunes and exports on the CPU too."""
    from safetensors.torch import load_file

    from nas import device
    from nas.pipeline import run_search
    from nas.rundir import SUPERNET_WEIGHTS
    from tests.nas.conftest import tiny_config

    dtypes = []
    real = device.autocast
    monkeypatch.setattr("nas.train.trainer.autocast", lambda d, t: dtypes.append(t) or real(d, t))
    result = run_search(tiny_config(compute={"device": "cpu", "precision": "bf16"}), None, tmp_path / "run")
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert result.front and all(0 <= c.metrics["test_accuracy"] <= 1 for c in result.front)
    weights = load_file(tmp_path / "run" / SUPERNET_WEIGHTS)
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float32}


@CUDA
def test_search_trains_and_evaluates_on_the_gpu_in_bf16(tmp_path):
    from nas.pipeline import run_search
    from tests.nas.conftest import tiny_config

    result = run_search(tiny_config(compute={"device": "cuda", "precision": "auto"}), None, tmp_path / "run")
    assert result.front and all(0 <= c.metrics["test_accuracy"] <= 1 for c in result.front)


@CUDA
def test_fp16_uses_loss_scaling_on_the_gpu(tmp_path):
    from nas.pipeline import run_search
    from tests.nas.conftest import tiny_config

    result = run_search(tiny_config(compute={"device": "cuda:0", "precision": "fp16"}), None, tmp_path / "run")
    assert result.front

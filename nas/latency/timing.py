"""Timing one module under a profile's protocol: warm-up, repeated runs, a robust statistic and its spread."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from nas.latency.profile import HardwareProfile


def _runner(module: nn.Module, x: torch.Tensor, profile: HardwareProfile) -> Callable[[], None]:
    if profile.backend == "onnxruntime":
        import tempfile
        from pathlib import Path

        import onnxruntime as ort

        from nas.export.formats import write_onnx

        with tempfile.TemporaryDirectory() as tmp:
            model = write_onnx(module, x, Path(tmp) / "m.onnx").read_bytes()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = profile.threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x.numpy()}
        return lambda: session.run(None, feed)
    return lambda: module(x)


def measure(module: nn.Module, x: torch.Tensor, profile: HardwareProfile) -> tuple[float, float]:
    """(latency in ms by the profile's statistic, relative spread (p75 - p25) / median)."""
    torch.set_num_threads(profile.threads)
    module = module.eval().to(profile.device)
    x = x.to(profile.device)
    cuda = profile.device.startswith("cuda")
    times: list[float] = []
    with torch.inference_mode():
        run = _runner(module, x, profile)
        for _ in range(profile.warmup):
            run()
        for _ in range(profile.repeats):
            if cuda:  # CUDA events time the device, not the launch
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                run()
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                run()
                times.append((time.perf_counter() - t0) * 1e3)
    q = statistics.quantiles(times, n=4)
    med = statistics.median(times)
    value = min(times) if profile.statistic == "min" else med
    return value, (q[2] - q[0]) / med if med > 0 else 0.0

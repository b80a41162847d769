"""Latency backends: how a network runs on a profile's runtime, as its layers (timed in context) or as one call.

A backend implements LatencyBackend (prepare an input, prepare a network's layers or the whole network as
callable steps) and is registered in BACKENDS under the name a HardwareProfile's `backend` field takes.

torch: the extracted modules in eager mode. onnxruntime: one CPU session per distinct layer (cached),
chained like the network's layers, and one session for the whole network; the fitted whole-network
overhead absorbs the difference between the two. Sessions are built from the TorchScript-based ONNX
exporter, 20-60x faster per layer than the dynamo exporter the product's exports use (an exploratory timing:
0.02-0.25 s against 1.4 s here), with the same run times within noise (4 whole `hybrid-small` networks:
dynamo / TorchScript 0.94-1.04); a layer it cannot export falls back to the dynamo exporter.
"""

from __future__ import annotations

import json
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nas.latency.timing import Step
from nas.registry import Registry
from search_spaces.standalone import Network

if TYPE_CHECKING:
    from nas.latency.profile import HardwareProfile


class LatencyBackend(ABC):
    """What the profiler needs of a runtime: its input, and a network as callable steps to time."""

    def __init__(self, profile: HardwareProfile):
        self.profile = profile

    @abstractmethod
    def input(self, x: torch.Tensor) -> Any:
        """The runtime's form of an input batch."""

    @abstractmethod
    def layers(self, net: Network, x: Any) -> list[Step]:
        """One step per layer of `net`, chained: each takes the previous step's output."""

    @abstractmethod
    def whole(self, net: Network, x: Any) -> list[Step]:
        """The whole network as one step."""


BACKENDS: Registry[type[LatencyBackend]] = Registry("latency backend")


@BACKENDS.register("torch")
class TorchBackend(LatencyBackend):
    def __init__(self, profile: HardwareProfile):
        super().__init__(profile)
        self.device = torch.device(profile.device)

    def input(self, x: torch.Tensor) -> Any:
        return x.to(self.device)

    def layers(self, net: Network, x: Any) -> list[Step]:
        return list(net.eval().to(self.device))

    def whole(self, net: Network, x: Any) -> list[Step]:
        return [net.eval().to(self.device)]


@BACKENDS.register("onnxruntime")
class OnnxRuntimeBackend(LatencyBackend):
    def __init__(self, profile: HardwareProfile):
        import onnxruntime as ort

        super().__init__(profile)
        self.options = ort.SessionOptions()
        self.options.intra_op_num_threads = profile.threads
        self.options.inter_op_num_threads = 1
        self._sessions: dict[str, Step] = {}  # by plan and input shape: the validation re-measures networks

    def input(self, x: torch.Tensor) -> Any:
        return x.numpy()

    def _session(self, plan: list[dict], module: nn.Module, example: torch.Tensor) -> Step:
        key = json.dumps([plan, list(example.shape)], sort_keys=True)
        if key not in self._sessions:
            self._sessions[key] = self._new_session(module, example)
        return self._sessions[key]

    def _new_session(self, module: nn.Module, example: torch.Tensor) -> Step:
        import onnxruntime as ort

        session = ort.InferenceSession(_onnx_bytes(module, example), self.options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda h: session.run(None, {name: h})[0]

    def layers(self, net: Network, x: Any) -> list[Step]:
        steps, h = [], torch.from_numpy(x)
        with torch.no_grad():  # exporting needs ordinary tensors, not inference-mode ones
            for entry, layer in zip(net.plan, net.eval(), strict=True):
                steps.append(self._session([entry], layer, h))
                h = layer(h)
        return steps

    def whole(self, net: Network, x: Any) -> list[Step]:
        return [self._session(net.plan, net.eval(), torch.from_numpy(x))]


def _onnx_bytes(module: nn.Module, example: torch.Tensor) -> bytes:
    """A fixed-shape ONNX model of `module`, for timing."""
    from nas.export.formats import quiet_exporter, write_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        try:
            with quiet_exporter(), torch.no_grad():
                torch.onnx.export(module, (example,), str(path), dynamo=False, opset_version=17)
            return path.read_bytes()
        except Exception:  # noqa: BLE001 - any exporter failure: the dynamo exporter handles more
            return write_onnx(module, example, path).read_bytes()


def backend_for(profile: HardwareProfile) -> LatencyBackend:
    return BACKENDS[profile.backend](profile)

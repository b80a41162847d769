"""HardwareProfile: the target a latency table is measured on, and how it is measured."""

from __future__ import annotations

import platform
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from nas.latency.allocator import Regime
from nas.latency.backends import BACKENDS


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class Machine(BaseModel):
    """Where a table was measured, so that it is never silently used on other hardware."""

    model_config = ConfigDict(frozen=True)
    cpu: str
    torch: str
    gpu: str | None = None

    @classmethod
    def here(cls, device: str) -> Machine:
        gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None
        return cls(cpu=cpu_model(), torch=torch.__version__.split("+")[0], gpu=gpu)


class HardwareProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?)$")
    backend: str = Field("torch", description="a registered latency backend (nas.latency.backends.BACKENDS)")
    threads: int = Field(2, ge=1)
    batch_size: int = Field(1, ge=1)
    dtype: Literal["float32"] = "float32"
    statistic: Literal["fast-mean-vs-reference"] = Field(
        "fast-mean-vs-reference",
        description="each layer timed in context; the mean of the fastest `keep` share of runs, scaled by an "
                    "interleaved reference network (see nas.latency.timing)")
    keep: float = Field(0.5, gt=0, le=1, description="share of the fastest runs averaged")
    warmup: int = Field(10, ge=0)
    repeats: int = Field(100, ge=2, description="timed runs per measurement, and as many of the reference")
    block: int = Field(5, ge=1, description="runs per block; blocks alternate with the reference's")
    cover: int = Field(3, ge=1, description="networks (contexts) each layer entry is timed in")
    allocator: Regime = Field("steady", description="the measuring process's malloc: 'steady' fixes glibc's mmap and "
                                                    "trim thresholds at their largest, as a long-running process "
                                                    "settles (see nas.latency.allocator); 'as-is' leaves them")
    machine: Machine | None = Field(None, description="where it was measured; a profile registered before any "
                                                      "measurement takes the machine of its first measurement")

    @field_validator("backend")
    @classmethod
    def _registered(cls, v: str) -> str:
        return BACKENDS.check(v)

    @staticmethod
    def default_name(device: str, backend: str, batch_size: int, threads: int) -> str:
        return f"{device}-{backend}-b{batch_size}-t{threads}"

    def matches_here(self) -> bool:
        return self.machine is None or self.machine == Machine.here(self.device)

    def bound_here(self) -> HardwareProfile:
        """This profile, with this machine as where it is measured if no machine was named yet."""
        return self if self.machine is not None else self.model_copy(update={"machine": Machine.here(self.device)})

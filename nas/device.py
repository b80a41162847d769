"""Where training and evaluation run, and in which precision.

`device: auto` picks the first CUDA device when there is one, else the CPU; `cuda` or `cuda:N` must exist
(a clear error otherwise, before any work). `precision: auto` trains in bf16 autocast on a GPU that has it
(fp16 with loss scaling on one that does not) and in fp32 on a CPU, where autocast rarely pays; `bf16`,
`fp16` and `fp32` force a choice. Weights stay fp32 (autocast casts inside operations), so checkpoints,
exports and the latency tables do not depend on the precision a search trained in.
"""

from __future__ import annotations

import contextlib

import torch

from search_spaces import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class DeviceError(UserError):
    """A requested device or precision is not available here."""


def resolve_device(name: str) -> torch.device:
    """The torch device for a config's `device` field, checked against this machine."""
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} was requested, but this machine has no CUDA device "
                              "(use device: auto or cpu)")
        index = int(name.split(":", 1)[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} was requested, but this machine has {torch.cuda.device_count()} "
                              f"CUDA device(s)")
        return torch.device("cuda", index)
    raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N")


def amp_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`; None runs in fp32."""
    if precision == "fp32" or (precision == "auto" and device.type == "cpu"):
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or (device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16  # a GPU without bf16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[None]:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """Loss scaling for fp16 on a GPU (bf16 and fp32 need none: a disabled scaler passes through)."""
    return torch.amp.GradScaler(device.type, enabled=dtype is torch.float16 and device.type == "cuda")

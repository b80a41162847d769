"""The measurement protocol: layers timed in context, against an interleaved reference network.

A network runs as a list of steps (its layers). One run times every step where it runs, inside
the whole network, so each layer pays what it pays in a real forward pass: the previous layer's
cache footprint, thread wake-ups, Python dispatch. Runs come in blocks that alternate with blocks of
a fixed reference network; a measurement is the target's fast-share mean scaled by
`reference_ms / reference now`. On a shared machine the speed of the whole host drifts by 5-10%
over seconds to minutes; both networks feel that drift alike, so the ratio cancels it.

The statistic is the mean over the fastest `keep` share of runs (ranked by their total time),
taken per step: a mean, so the steps' values add up to the network's, and over the fast share,
so preempted runs do not count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from nas.latency.profile import HardwareProfile

Step = Callable[[Tensor], Tensor]


class Timed(NamedTuple):
    """A network as steps, with the input it is timed on."""

    steps: Sequence[Step]
    x: Any


def _run_cpu(steps: Sequence[Step], x: Tensor, runs: int) -> np.ndarray:
    out = np.empty((runs, len(steps)))
    for r in range(runs):
        h, t0 = x, time.perf_counter()
        for j, step in enumerate(steps):
            h = step(h)
            t1 = time.perf_counter()
            out[r, j], t0 = t1 - t0, t1
    return out * 1e3


def _run_cuda(steps: Sequence[Step], x: Tensor, runs: int) -> np.ndarray:
    """CUDA events after every step time the device's work, not the launches."""
    out = np.empty((runs, len(steps)))
    for r in range(runs):
        events = [torch.cuda.Event(enable_timing=True) for _ in range(len(steps) + 1)]
        h = x
        events[0].record()
        for j, step in enumerate(steps):
            h = step(h)
            events[j + 1].record()
        torch.cuda.synchronize()
        out[r] = [events[j].elapsed_time(events[j + 1]) for j in range(len(steps))]
    return out


def step_times(steps: Sequence[Step], x: Tensor, runs: int, device: str) -> np.ndarray:
    """(runs, steps) milliseconds: each step timed where it runs in the sequence."""
    return (_run_cuda if device.startswith("cuda") else _run_cpu)(steps, x, runs)


def fast_mean(times: np.ndarray, keep: float) -> np.ndarray:
    """Per-step mean over the fastest `keep` share of runs, the runs ranked by their total."""
    n = max(1, round(len(times) * keep))
    fastest = np.argsort(times.sum(axis=1), kind="stable")[:n]
    return times[fastest].mean(axis=0)


def paired(target: Timed, reference: Timed, profile: HardwareProfile) -> tuple[np.ndarray, float]:
    """(target's per-step fast mean, reference's total fast mean), from alternating blocks of runs."""
    torch.set_num_threads(profile.threads)
    blocks = max(1, profile.repeats // profile.block)
    t_runs, r_runs = [], []
    with torch.inference_mode():
        for net in (target, reference):
            step_times(net.steps, net.x, profile.warmup, profile.device)
        for _ in range(blocks):
            t_runs.append(step_times(target.steps, target.x, profile.block, profile.device))
            r_runs.append(step_times(reference.steps, reference.x, profile.block, profile.device))
    return fast_mean(np.concatenate(t_runs), profile.keep), float(fast_mean(np.concatenate(r_runs), profile.keep).sum())


def alone(net: Timed, profile: HardwareProfile) -> float:
    """The fast-share mean of a network on its own: the reference's unit at build time, and its speed now."""
    torch.set_num_threads(profile.threads)
    with torch.inference_mode():
        step_times(net.steps, net.x, profile.warmup, profile.device)
        return float(fast_mean(step_times(net.steps, net.x, 4 * profile.repeats, profile.device), profile.keep).sum())

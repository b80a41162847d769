"""The measuring process's memory allocator, fixed so that a latency does not depend on the process's past.

glibc's malloc serves a block above its mmap threshold (128 KiB at start) with fresh pages from the
kernel, faulted in on first touch and returned on free, and it raises that threshold (up to 32 MiB on
64-bit) to the size of each such block freed. So whether a network's larger activations are faulted-in
fresh pages on every call or reused heap depends on what the process allocated before: at batch 32 the
same network timed 8.5 ms in one process and 17.5 ms in another (benchmarks/latency_recheck.py), while
with the thresholds fixed it repeated within 3.5% across processes.

The "steady" regime sets both thresholds once, at their largest (mmap 32 MiB, trim 1 GiB): activations
reuse the heap, as they do in a long-running inference process once glibc's own threshold has risen to
its largest blocks. It applies to the whole process and is never undone; the memory held back is the
heap's free top, at most the trim threshold.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache
from typing import Literal

Regime = Literal["steady", "as-is"]
UNRECORDED: Regime = "as-is"  # the regime of a table or result saved before the regime was recorded: glibc untouched
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's largest on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 1 << 30

log = logging.getLogger(__name__)


@cache
def _steady() -> bool:
    """Fix glibc's thresholds once per process; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        log.warning("no glibc mallopt here: latency measured with the allocator as it is")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def environment(regime: Regime) -> dict[str, str]:
    """The environment that puts a deployed process in `regime` from its start (glibc reads it at start-up)."""
    if regime == "as-is":
        return {}
    return {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD_MAX), "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)}


def describe(regime: Regime) -> str:
    """How to run a model in the regime its latency was measured in."""
    if regime == "as-is":
        return "glibc's malloc as it is"
    return "glibc's malloc with " + " ".join(f"{k}={v}" for k, v in environment(regime).items())


def fix_allocator(regime: Regime) -> bool:
    """Put this process in the profile's allocator regime; True when the regime holds here."""
    return regime == "as-is" or _steady()

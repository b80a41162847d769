"""Re-measure a validation report's worst- and best-predicted networks now, in this process: is their error
a property of the table (it stays) or of the measuring process's state (it moves)?

Run it under different process settings (for example glibc's MALLOC_MMAP_THRESHOLD_ and
MALLOC_TRIM_THRESHOLD_, which fix where large tensors are allocated) and compare the `now` columns.

    python benchmarks/latency_recheck.py runs/latency-accuracy/hybrid-small-b32-torch.json --space hybrid-small
"""

from __future__ import annotations

import argparse

import numpy as np
from latency_report import add_arguments, load

from nas.latency.profiler import Measurer
from search_spaces import plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--worst", type=int, default=6)
    parser.add_argument("--best", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=300, help="runs per network (the benchmark's ground truth)")
    args = parser.parse_args()
    run = load(args)
    err = run.error
    order = np.argsort(-np.abs(err))
    measurer = Measurer(run.table.profile.model_copy(update={"repeats": args.repeats}), run.table.reference)
    print(f"{'net':>4s} {'predicted':>9s} {'then':>7s} {'error':>7s} {'now':>7s} {'error':>7s} {'slowdown':>8s}")
    for i in [*order[: args.worst], *order[::-1][: args.best]]:
        ms, slowdown = measurer.network_ms(plan(run.space, run.archs[i]), run.space.input_shape)
        n = run.networks[i]
        print(f"{i:4d} {n['predicted_ms']:9.2f} {n['measured_ms']:7.2f} {100 * err[i]:+6.1f}% {ms:7.2f} "
              f"{100 * (n['predicted_ms'] - ms) / ms:+6.1f}% {slowdown:8.2f}", flush=True)


if __name__ == "__main__":
    main()

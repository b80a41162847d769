"""Re-measure a validation report's worst- and best-predicted networks now, in this process: is their error
a property of the table (it stays) or of the measuring process's state (it moves)?

Run it under different process settings (for example glibc's MALLOC_MMAP_THRESHOLD_ and
MALLOC_TRIM_THRESHOLD_, which fix where large tensors are allocated) and compare the `now` columns.

    python benchmarks/latency_recheck.py runs/latency-accuracy/hybrid-small-b32-torch.json --space hybrid-small
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.latency.profiler import Measurer  # noqa: E402
from nas.latency.table import LatencyTable  # noqa: E402
from search_spaces import get_space, plan  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", type=Path)
    parser.add_argument("--report", type=Path, help="the validation report (default: TABLE's .report.json)")
    parser.add_argument("--space", required=True, help="the preset the table was validated on")
    parser.add_argument("--worst", type=int, default=6)
    parser.add_argument("--best", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=300, help="runs per network (the benchmark's ground truth)")
    args = parser.parse_args()
    table, space = LatencyTable.load(args.table), get_space(args.space)
    networks = json.loads((args.report or args.table.with_suffix(".report.json")).read_text())["networks"]
    rng = random.Random(0)  # the validation networks' seed
    archs = [space.sample(rng) for _ in networks]
    if [a.id for a in archs] != [n["arch_id"] for n in networks]:
        sys.exit("the report's networks are not this space's validation networks (seed 0)")
    err = np.array([(n["predicted_ms"] - n["measured_ms"]) / n["measured_ms"] for n in networks])
    order = np.argsort(-np.abs(err))
    measurer = Measurer(table.profile.model_copy(update={"repeats": args.repeats}), table.reference)
    print(f"{'net':>4s} {'predicted':>9s} {'then':>7s} {'error':>7s} {'now':>7s} {'error':>7s} {'slowdown':>8s}")
    for i in [*order[: args.worst], *order[::-1][: args.best]]:
        ms, slowdown = measurer.network_ms(plan(space, archs[i]), space.input_shape)
        n = networks[i]
        print(f"{i:4d} {n['predicted_ms']:9.2f} {n['measured_ms']:7.2f} {100 * err[i]:+6.1f}% {ms:7.2f} "
              f"{100 * (n['predicted_ms'] - ms) / ms:+6.1f}% {slowdown:8.2f}", flush=True)


if __name__ == "__main__":
    main()

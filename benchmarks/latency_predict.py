"""Latency predictions per second: a table's predictor scoring many random archs at once.

Uses the table given with --table, or a table of the space's every layer with made-up latencies
(the predictor's speed does not depend on the values). Prints the rate for a fresh predictor
(each new layer position resolved once) and for one that has seen the space, against the
target of 10,000 predictions per second, and checks that both agree with the one-by-one path.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.latency import HardwareProfile, LatencyPredictor, LatencyTable, Machine  # noqa: E402
from nas.latency.layers import space_layers  # noqa: E402
from nas.latency.table import Entry, space_ref  # noqa: E402
from search_spaces import get_space  # noqa: E402


def made_up_table(space_name: str) -> LatencyTable:
    space = get_space(space_name)
    rng = np.random.default_rng(0)
    entries = [Entry(layer=e, input_size=s, ms=float(rng.uniform(0.01, 1.0)))
               for e, s in space_layers(space)]
    profile = HardwareProfile(name="made-up", machine=Machine.here("cpu"))
    return LatencyTable(spaces=[space_ref(space)], profile=profile, entries=entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", type=Path, help="a built table (default: made-up values for --space)")
    parser.add_argument("--space", default="hybrid-small")
    parser.add_argument("--archs", type=int, default=10_000)
    args = parser.parse_args()
    table = LatencyTable.load(args.table) if args.table else made_up_table(args.space)
    space = get_space(args.space)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(args.archs)]
    predictor = LatencyPredictor(table, space)
    rates = []
    for label in ("fresh predictor", "warm predictor"):
        t0 = time.perf_counter()
        predicted = predictor.predict_many(archs)
        seconds = time.perf_counter() - t0
        rates.append(args.archs / seconds)
        print(f"{label:16s} {args.archs} archs in {seconds:.3f} s: {rates[-1]:,.0f} predictions/s")
    one_by_one = np.array([predictor(a) for a in archs[:500]])
    assert np.allclose(one_by_one, predicted[:500]), "vectorized and one-by-one predictions differ"
    print(f"slowest rate / target (10,000/s): {min(rates) / 10_000:.1f}x")


if __name__ == "__main__":
    main()

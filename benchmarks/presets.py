"""The published-design presets, searched with the two-line default config on `digits`.

For each small preset (or those named): run the whole search (train, search, finalize) as `nas search`
does, and print its wall time, front size, the block families on the front and the best test accuracy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter

import torch

from nas.pipeline import run_search
from nas.schemas import SearchConfig

SMALL = ["maxvit-small", "mambaout-small", "vcmamba-small", "mobile-small"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("presets", nargs="*", default=SMALL)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"{'preset':<16} {'minutes':>7} {'front':>5} {'test acc':>8}  families on the front (layers)")
    for name in args.presets:
        config = SearchConfig.model_validate({"space": name, "dataset": {"name": "digits"}})
        t0 = time.perf_counter()
        result = run_search(config, workdir=tempfile.mkdtemp(prefix=f"bench-{name}-"))
        minutes = (time.perf_counter() - t0) / 60
        families: Counter[str] = Counter()
        for cand in result.front:
            families.update(layer["type"] for stage in cand.arch["stages"] for layer in stage["layers"])
        best = max(c.metrics["test_accuracy"] for c in result.front)
        mix = ", ".join(f"{f} {n}" for f, n in families.most_common())
        print(f"{name:<16} {minutes:7.1f} {len(result.front):5d} {100 * best:7.1f}%  {mix}", flush=True)


if __name__ == "__main__":
    main()

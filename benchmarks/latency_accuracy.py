"""Latency-table accuracy on this machine: build and validate the issue's three settings.

For each (space, batch): `build_table` (2 threads, torch eager or --backend onnxruntime, every layer
timed in 3 networks (--cover), 100 runs per network in blocks of 5, overhead fitted on 40 networks; at
batch > 1, 80 runs in blocks of 2, as host noise hits longer runs harder), then `validate_table` on 100
random subnets of another seed (300 runs each: the ground truth), 20 of them measured twice for the noise
floor. Prints the calibrated
figures (each network against the reference interleaved with it) and the raw ones (the table's
build-time figures against plain milliseconds). Tables, reports and scatter plots go to --out; an
existing table there is resumed, not rebuilt.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.latency import HardwareProfile, Machine, build_table, validate_table  # noqa: E402
from search_spaces import get_space  # noqa: E402

SETTINGS = [("hybrid-small", 32), ("hybrid-seq", 1), ("hybrid-small", 1)]


def run(space_name: str, batch: int, args: argparse.Namespace) -> dict:
    space = get_space(space_name)
    profile = HardwareProfile(name=f"cpu-{args.backend}-b{batch}-t{args.threads}", batch_size=batch,
                              threads=args.threads, backend=args.backend, cover=args.cover,
                              repeats=args.repeats if batch == 1 else args.repeats_batched,
                              block=5 if batch == 1 else args.block_batched, allocator=args.allocator,
                              machine=Machine.here("cpu"))
    stem = args.out / f"{space_name}-b{batch}-{args.backend}"
    table = build_table(space, profile, stem.with_suffix(".json"), calibration=args.calibration)
    report = validate_table(table, space, samples=args.samples, plot=stem.with_suffix(".png"),
                            repeats=args.validation_repeats)
    stem.with_suffix(".report.json").write_text(json.dumps(report, indent=2))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/latency-accuracy"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=100, help="timed runs per network at batch 1")
    parser.add_argument("--repeats-batched", type=int, default=80, help="timed runs per network at batch > 1")
    parser.add_argument("--block-batched", type=int, default=2, help="runs per block at batch > 1")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--validation-repeats", type=int, default=300,
                        help="runs per validation network: the ground truth's precision")
    parser.add_argument("--cover", type=int, default=3, help="networks each layer is timed in (the profile default)")
    parser.add_argument("--calibration", type=int, default=40, help="networks the overhead is fitted on")
    parser.add_argument("--backend", default="torch", help="torch or onnxruntime")
    parser.add_argument("--allocator", default="steady", help="steady (glibc's thresholds fixed) or as-is")
    parser.add_argument("--only", help="space:batch, e.g. hybrid-seq:1")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    settings = [(s, int(b)) for s, b in [args.only.split(":")]] if args.only else SETTINGS
    print(f"{'space':14s} {'backend':11s} {'batch':>5s} {'entries':>7s} {'nets':>5s} {'build s':>8s} {'ms range':>13s} "
          f"{'MAPE':>6s} {'±5%':>5s} {'±10%':>5s} {'tau':>6s} {'rho':>6s} {'noise':>6s} {'raw ±10%':>8s} {'raw tau':>7s}")
    for space_name, batch in settings:
        r = run(space_name, batch, args)
        t, m = r["table"], r["measured_ms"]
        print(f"{space_name:14s} {args.backend:11s} {batch:5d} {t['entries']:7d} {t['networks']:5d} "
              f"{t['build_seconds']:8.0f} {m['min']:6.2f}-{m['max']:<6.2f} {100 * r['mape']:5.1f}% "
              f"{100 * r['within_5pct']:4.0f}% {100 * r['within_10pct']:4.0f}% {r['kendall_tau']:6.3f} "
              f"{r['spearman_rho']:6.3f} {100 * r['noise_floor']['median_rel_diff']:5.1f}% "
              f"{100 * r['raw']['within_10pct']:7.0f}% {r['raw']['kendall_tau']:7.3f}", flush=True)


if __name__ == "__main__":
    main()

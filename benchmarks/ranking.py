"""Does the supernet rank archs like stand-alone training does? Kendall tau and Spearman rho.

Trains a supernet (or reuses it from its work folder) on `--dataset` (`seqtask`: the generated sequence task
of benchmarks/seqtask.py, over hybrid-seq, where archs differ; `digits`: hybrid-small, where they hardly do),
with `--sandwich` families or extremes; samples N archs (the space's extremes included), trains each from
scratch with one recipe, and compares the stand-alone test accuracies with the supernet's (inherited
weights, BN recalibrated). Prints the spread of the stand-alone accuracies beside the correlations.
"""

from __future__ import annotations

import argparse
import random
import time

import torch
from common import task_config, task_workdir, trained_supernet
from scipy.stats import kendalltau, spearmanr

from nas.evaluate import Evaluator, accuracy
from nas.finalize import fine_tune, fresh
from nas.progress import Reporter
from nas.schemas import FinalizeConfig
from nas.train import CHECKPOINT, load_checkpoint
from search_spaces import count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", choices=["seqtask", "digits"], default="seqtask")
    parser.add_argument("--sandwich", choices=["families", "extremes"], default="extremes")
    parser.add_argument("--steps", type=int, default=None, help="supernet training steps (default: the config's)")
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=15, help="stand-alone epochs (early stopping on validation)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    cfg = task_config(args.dataset, args.sandwich, args.steps)
    t0 = time.perf_counter()
    supernet, data, space = trained_supernet(task_workdir(args.dataset, args.sandwich, args.steps), cfg)
    train_s = time.perf_counter() - t0
    evaluator = Evaluator(supernet, data)
    rng = random.Random(args.seed)
    archs = [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(args.archs - 2)]
    recipe = FinalizeConfig(epochs=args.epochs, lr=2e-3, patience=4)
    steps = load_checkpoint(task_workdir(args.dataset, args.sandwich, args.steps) / CHECKPOINT)["step"]
    print(f"{space.name} on {args.dataset}, sandwich {args.sandwich}, supernet {steps} steps ({train_s:.0f} s); "
          f"{len(archs)} archs, stand-alone up to {args.epochs} epochs each; accuracy on {len(data.y_test)} test items")
    print(f"{'arch':<14} {'types':<24} {'MACs':>10} {'supernet':>9} {'stand-alone':>12} {'train s':>8}")
    ours, theirs = [], []
    for i, arch in enumerate(archs):
        ours.append(accuracy(evaluator.subnet(arch), data.x_test, data.y_test))
        scratch = fresh(evaluator.subnet(arch), seed=args.seed + i)
        t1 = time.perf_counter()
        fine_tune(scratch, data, recipe, Reporter(), seed=i)
        theirs.append(accuracy(scratch, data.x_test, data.y_test))
        types = ",".join(sorted(set(arch.layer_types())))
        print(f"{arch.id[:12]:<14} {types:<24} {count(space, arch).macs:>10,} {ours[-1]:>9.4f} {theirs[-1]:>12.4f} "
              f"{time.perf_counter() - t1:>8.1f}", flush=True)
    tau = kendalltau(ours, theirs).statistic
    rho = spearmanr(ours, theirs).statistic
    print(f"n = {len(archs)}; stand-alone accuracy {min(theirs):.4f}..{max(theirs):.4f} "
          f"(spread {100 * (max(theirs) - min(theirs)):.1f} points); supernet accuracy {min(ours):.4f}..{max(ours):.4f}")
    print(f"Kendall tau {tau:.3f}   Spearman rho {rho:.3f}   (BossNAS on ImageNet: 0.65 / 0.78)")


if __name__ == "__main__":
    main()

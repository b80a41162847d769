"""Does the supernet rank archs like stand-alone training does? Kendall tau and Spearman rho on digits.

Trains the default supernet (or reuses it from --workdir), samples N archs of hybrid-small,
trains each from scratch with the same recipe, and compares the stand-alone accuracies with the
supernet's (inherited weights, BN recalibrated), both on the held-out validation + test images.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch
from common import trained_supernet
from scipy.stats import kendalltau, spearmanr

from nas.data import DataSplits
from nas.evaluate import Evaluator, accuracy
from nas.finalize import fine_tune
from nas.progress import Reporter
from nas.schemas import FinalizeConfig
from search_spaces import HybridSupernet, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-supernet"))
    parser.add_argument("--archs", type=int, default=14)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    supernet, data, space = trained_supernet(args.workdir)
    evaluator = Evaluator(supernet, data)
    held_x = torch.cat([data.x_val, data.x_test])
    held_y = torch.cat([data.y_val, data.y_test])
    rng = random.Random(args.seed)
    archs = [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(args.archs - 2)]
    recipe = FinalizeConfig(epochs=args.epochs, lr=2e-3)
    train_only = DataSplits(data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test,
                            data.num_classes, data.mean, data.std)
    print(f"hybrid-small on digits: {len(archs)} archs, stand-alone {args.epochs} epochs each, "
          f"accuracy on {len(held_y)} held-out images")
    print(f"{'arch':<14} {'types':<24} {'MACs':>10} {'supernet':>9} {'stand-alone':>12} {'train s':>8}")
    ours, theirs = [], []
    for i, arch in enumerate(archs):
        ours.append(accuracy(evaluator.subnet(arch), held_x, held_y))
        torch.manual_seed(args.seed + i)
        scratch = HybridSupernet.from_spec(space).extract(arch)  # fresh random weights
        t0 = time.perf_counter()
        fine_tune(scratch, train_only, recipe, Reporter(), seed=i)
        theirs.append(accuracy(scratch, held_x, held_y))
        types = ",".join(sorted(set(arch.layer_types())))
        print(f"{arch.id[:12]:<14} {types:<24} {count(space, arch).macs:>10,} {ours[-1]:>9.4f} {theirs[-1]:>12.4f} "
              f"{time.perf_counter() - t0:>8.1f}")
    tau = kendalltau(ours, theirs).statistic
    rho = spearmanr(ours, theirs).statistic
    print(f"n = {len(archs)}; stand-alone accuracy {min(theirs):.4f}..{max(theirs):.4f}; "
          f"supernet accuracy {min(ours):.4f}..{max(ours):.4f}")
    print(f"Kendall tau {tau:.3f}   Spearman rho {rho:.3f}   (BossNAS on ImageNet: 0.65 / 0.78)")


if __name__ == "__main__":
    main()

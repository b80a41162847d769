"""NSGA-II (optionally pre-screened by the accuracy predictor) vs random search: front hypervolume with the
same number of real evaluations.

One supernet is trained (or reused: the same work folders as benchmarks/ranking.py) on `--dataset`; then,
for each seed, both strategies evaluate the same number of distinct archs (accuracy with inherited weights
vs MACs). Both fronts are scored against one reference point: error 1.0 and 1.1 x the largest subnet's MACs.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from common import task_config, task_workdir, trained_supernet

from nas.evaluate import Evaluator
from nas.pipeline import normalized_hypervolume, reference_point
from nas.progress import Reporter
from nas.schemas import SearchSettings
from nas.search import Objectives, make_strategy
from nas.search.loop import front_of, run_strategy
from nas.search.surrogate import Screened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", choices=["seqtask", "digits"], default="digits")
    parser.add_argument("--sandwich", choices=["families", "extremes"], default="extremes")
    parser.add_argument("--steps", type=int, default=None, help="supernet training steps (seqtask; default: the "
                                                                   "two-line config's length)")
    parser.add_argument("--evaluations", type=int, default=100)
    parser.add_argument("--screen", type=int, default=1, help="NSGA-II pre-screening factor (1: off)")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    workdir = task_workdir(args.dataset, args.sandwich, args.steps)
    supernet, data, space = trained_supernet(workdir, task_config(args.dataset, args.sandwich, args.steps))
    evaluator = Evaluator(supernet, data)  # shared cache: an arch scores the same for both strategies
    objectives = Objectives(["accuracy", "macs"])
    ref = reference_point(objectives, evaluator, space)
    print(f"{args.dataset}, {space.name}, {args.evaluations} evaluations per run, objectives accuracy / MACs, "
          f"NSGA-II pre-screening x{args.screen}")
    print(f"reference point: error 1.0, MACs {ref['macs']:,.0f}")
    print(f"{'seed':>4} {'nsga2 HV':>10} {'random HV':>10} {'ratio':>7} {'nsga2 front':>12} {'random front':>13}")
    ratios = []
    for seed in range(args.seeds):
        scores = {}
        for name in ("nsga2", "random"):
            settings = SearchSettings(strategy=name, evaluations=args.evaluations, population=20, seed=seed)
            strategy = make_strategy(space, objectives, settings)
            if name == "nsga2" and args.screen > 1:
                strategy = Screened(strategy, evaluator.cost, args.screen, settings.screen_after)
            cands = run_strategy(strategy, evaluator.evaluate_many, args.evaluations, Reporter(), settings.population)
            front = front_of(cands, objectives)
            scores[name] = (normalized_hypervolume(front, objectives, ref), len(front))
        ratios.append(scores["nsga2"][0] / scores["random"][0])
        print(f"{seed:>4} {scores['nsga2'][0]:>10.4f} {scores['random'][0]:>10.4f} {ratios[-1]:>7.3f} "
              f"{scores['nsga2'][1]:>12} {scores['random'][1]:>13}")
    print(f"mean hypervolume ratio nsga2/random: {statistics.mean(ratios):.3f}")


if __name__ == "__main__":
    main()

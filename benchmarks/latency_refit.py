"""Refit a built latency table offline, without timing anything: how would other entry statistics do?

Reads a table and the validation report that `latency_accuracy.py` wrote beside it, rebuilds the networks
both were measured on (the build's overhead networks and the validation networks come from fixed seeds),
and scores, per entry statistic, the product's overhead fit (`fit_correction`) two ways: leave-one-out on
the build's own overhead networks, and fitted on all of them, on the validation networks. A statistic that
wins only on the validation networks is fitted to them; leave-one-out is the check that it is not.

    python benchmarks/latency_refit.py runs/latency-accuracy/hybrid-small-b32-torch.json --space hybrid-small
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from latency_report import add_arguments, load
from scipy.stats import kendalltau

from nas.latency import LatencyPredictor
from nas.latency.predictor import fit_correction
from nas.latency.table import LatencyTable
from search_spaces import Arch, SearchSpaceSpec

# "table": the entries as built (predecessor terms fitted); the others: a plain statistic of each entry's
# samples over its contexts, without predecessor terms
STATISTICS: dict[str, Callable[[list[float]], float] | None] = {
    "table": None, "mean": lambda s: float(np.mean(s)), "median": lambda s: float(np.median(s)),
    "min": lambda s: float(np.min(s)),
}


def with_statistic(table: LatencyTable, statistic: str) -> LatencyTable:
    of = STATISTICS[statistic]
    if of is None:
        return table.model_copy(deep=True)
    copy = table.model_copy(deep=True, update={"context": {}})
    for entry in copy.entries:
        entry.ms = of(entry.samples) if entry.samples else entry.ms
    return copy


def predictions(table: LatencyTable, space: SearchSpaceSpec, build: list[Arch], measured: np.ndarray,
                validation: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
    """(leave-one-out predictions of the build networks, predictions of the validation networks)."""
    points = [LatencyPredictor(table, space).overhead_point(a, float(m), "", "build")
              for a, m in zip(build, measured, strict=True)]
    loo = []
    for i, arch in enumerate(build):
        table.correction = fit_correction(points[:i] + points[i + 1:])
        loo.append(LatencyPredictor(table, space)(arch))
    table.correction = fit_correction(points)
    return np.array(loo), LatencyPredictor(table, space).predict_many(validation)


def score(predicted: np.ndarray, measured: np.ndarray) -> str:
    err = np.abs(predicted - measured) / measured
    return (f"{100 * err.mean():5.2f}% {100 * np.mean(err <= 0.10):5.0f}% "
            f"{kendalltau(predicted, measured).statistic:6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    run = load(parser.parse_args())
    build, built = run.build_networks()
    truth = np.array([n["measured_ms"] for n in run.networks])
    print(f"{len(built)} build networks (leave-one-out), {len(truth)} validation networks")
    print(f"{'entries':8s} {'LOO MAPE':>8s} {'±10%':>5s} {'tau':>6s}   {'val MAPE':>8s} {'±10%':>5s} {'tau':>6s}")
    for statistic in STATISTICS:
        loo, predicted = predictions(with_statistic(run.table, statistic), run.space, build, built, run.archs)
        print(f"{statistic:8s} {score(loo, built):>21s}   {score(predicted, truth):>21s}")


if __name__ == "__main__":
    main()

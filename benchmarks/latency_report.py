"""What the offline latency scripts share: a built table, its validation report, and the networks both were
measured on, rebuilt from the seeds `build_table` and `validate_table` use."""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.latency.profiler import CALIBRATION_SEED, validation_archs  # noqa: E402
from nas.latency.table import LatencyTable, space_fingerprint  # noqa: E402
from search_spaces import Arch, SearchSpaceSpec, get_space  # noqa: E402


@dataclass
class Validated:
    table: LatencyTable
    space: SearchSpaceSpec
    networks: list[dict]  # the report's per-network figures
    archs: list[Arch]  # the validation networks, in the report's order

    @property
    def error(self) -> np.ndarray:
        """Each validation network's relative prediction error, as reported."""
        return np.array([(n["predicted_ms"] - n["measured_ms"]) / n["measured_ms"] for n in self.networks])

    def build_networks(self) -> tuple[list[Arch], np.ndarray]:
        """The build's overhead networks (as stored, or rebuilt from the seed for a table that predates storing
        them, when they were all random) and their measured latencies (reference units)."""
        fingerprint = space_fingerprint(self.space)  # a table holds the points of every space it was built for
        points = [p for p in self.table.points if p.source == "build" and p.space == fingerprint]
        measured = np.array([p.measured for p in points])
        if all(p.arch is not None for p in points):
            return [self.space.parse(p.arch) for p in points], measured
        rng = random.Random(CALIBRATION_SEED)  # such tables drew them all at random
        return [self.space.sample(rng) for _ in points], measured


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", type=Path)
    parser.add_argument("--report", type=Path, help="the validation report (default: TABLE's .report.json)")
    parser.add_argument("--space", required=True, help="the preset the table was built and validated for")


def load(args: argparse.Namespace) -> Validated:
    table, space = LatencyTable.load(args.table), get_space(args.space)
    networks = json.loads((args.report or args.table.with_suffix(".report.json")).read_text())["networks"]
    archs = validation_archs(space, len(networks))
    if [a.id for a in archs] != [n["arch_id"] for n in networks]:
        sys.exit("the report's networks are not this space's validation networks (seed 0)")
    return Validated(table, space, networks, archs)

"""Successive halving between a finalist's two starts (`finalize.init: auto`): the fine-tuning phase with
`finalize.halving_epoch` at its default and off, on the same finalists of one trained supernet (hybrid-small on
digits, reused from --workdir), in turns (--rounds), in this process. Prints the phase's seconds, each stopped
start, and per finalist the start kept, its epochs, validation and test accuracy; then the medians' ratio."""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import torch
from common import DEFAULT, trained_supernet

from nas.evaluate import Evaluator
from nas.finalize import local_fine_tuner
from nas.pipeline import train_finalists
from nas.progress import RecordingReporter
from nas.schemas import Candidate, SearchConfig
from search_spaces import SearchSpaceSpec


def finalists(evaluator: Evaluator, space: SearchSpaceSpec, count: int) -> list[Candidate]:
    """`count` sampled archs scored on the validation split, as a search's front would hand them over."""
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(count)]
    return [Candidate(arch_id=a.id, arch=a.to_dict(), metrics={"accuracy": evaluator.scorer.val_accuracy(a)})
            for a in archs]


def one_phase(evaluator: Evaluator, front: list[Candidate], config: SearchConfig) -> tuple[float, list[str]]:
    reporter = RecordingReporter()
    start = time.perf_counter()
    models, tuned, picked = train_finalists(front, evaluator, config, evaluator.data, reporter, local_fine_tuner,
                                            None)
    seconds = time.perf_counter() - start
    lines = [text for text in reporter.of("message") if "stopped after epoch" in text]
    for arch_id, model in models.items():
        metrics = tuned[arch_id].metrics
        test = evaluator.test_accuracy(evaluator.supernet.space.parse(
            next(c.arch for c in front if c.arch_id == arch_id)), model)
        lines.append(f"{arch_id[:8]} kept {picked[arch_id]:9s} {metrics['epochs']:3.0f} epochs, val "
                     f"{metrics['val_accuracy']:.4f}, test {test:.4f}")
    return seconds, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench-supernet"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    supernet, data, space = trained_supernet(args.workdir)
    evaluator = Evaluator(supernet, data)
    front = finalists(evaluator, space, args.top_k)
    default = DEFAULT.finalize.halving_epoch
    ways = {f"halving_epoch {default}": default, "halving_epoch 0 (off)": 0}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    print(f"fine-tuning {args.top_k} finalists (init auto: inherited and scratch each), hybrid-small on digits")
    for round_ in range(args.rounds):
        for name, epoch in ways.items():
            config = DEFAULT.model_copy(update={"finalize": DEFAULT.finalize.model_copy(
                update={"top_k": args.top_k, "halving_epoch": epoch})})
            took, lines = one_phase(evaluator, front, config)
            seconds[name].append(took)
            print(f"  round {round_ + 1}, {name}: {took:6.1f} s")
            print("\n".join(f"    {line}" for line in lines), flush=True)
    off = statistics.median(seconds["halving_epoch 0 (off)"])
    on = statistics.median(seconds[f"halving_epoch {default}"])
    print(f"  medians: halving {on:.1f} s, off {off:.1f} s ({on / off:.2f}x)")


if __name__ == "__main__":
    main()

"""Does the two-line config deliver the best model its search could? Measured on a user-style npz.

1. The two-line config (`space: hybrid-seq`, `dataset: {name: npz, path: ...}`; every other setting at its
   default, the 15-minute budget included) on the generated sequence task of benchmarks/seqtask.py (4,000
   training sequences, 1,000 test, 10 classes), run as `nas search` runs it. The delivered model is the
   finalist with the best validation accuracy after finalize; its held-out test accuracy is what the user gets.
2. 12 of the search's candidates, front and off-front, spread over the supernet's accuracy range (the trust
   report's pick), each re-initialised and trained stand-alone from scratch on a long schedule (up to
   `--epochs`, early stopping on validation with `--patience`); their best test accuracy is the bar.

Prints the search's wall time and phases, each reference arch, and the delivered model's gap to the bar.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (puts the repository on sys.path)
import torch
from seqtask import write

from nas.data import prepare
from nas.evaluate import Evaluator, accuracy
from nas.finalize import fine_tune, fresh
from nas.pipeline import run_search
from nas.progress import Reporter
from nas.schemas import FinalizeConfig, SearchConfig
from nas.train import train_supernet
from nas.trust import pick_archs
from search_spaces import HybridSupernet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=None, help="the search's run folder (default: a temp dir)")
    parser.add_argument("--references", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=60, help="stand-alone schedule of the references")
    parser.add_argument("--patience", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(2)
    path = write(Path("runs/seqtask.npz"))
    config = SearchConfig.model_validate({"space": "hybrid-seq", "dataset": {"name": "npz", "path": str(path)}})
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="two-line-"))
    if (workdir / "result.json").exists():
        raise SystemExit(f"{workdir} holds a finished search; its wall time would not be measured: choose a new folder")
    t0 = time.perf_counter()
    result = run_search(config, workdir=workdir)
    wall = time.perf_counter() - t0
    finalists = [c for c in result.front if "finetuned_val_accuracy" in c.metrics]
    delivered = max(finalists, key=lambda c: c.metrics["finetuned_val_accuracy"])
    print(f"two-line config: hybrid-seq on {path} (budget {config.budget.minutes:g} min)")
    print(f"search wall time {wall / 60:.1f} min ({', '.join(f'{k} {v:.0f} s' for k, v in result.timings.items())}); "
          f"{len(result.candidates)} candidates, front {len(result.front)}")
    for c in finalists:
        m = c.metrics
        print(f"  finalist {c.arch_id[:12]}  supernet val {m['accuracy']:.4f}  trained val {m['finetuned_val_accuracy']:.4f} "
              f"({'scratch' if m['finetuned_from_scratch'] else 'inherited'}, {m['finetuned_epochs']:.0f} epochs)  "
              f"test {m['test_accuracy']:.4f}")
    print(f"delivered model {delivered.arch_id[:12]}: test accuracy {delivered.metrics['test_accuracy']:.4f}")

    raw, space = prepare(config)
    data = raw.normalized()
    supernet = HybridSupernet.from_spec(space)
    train_supernet(supernet, data, config.train, workdir)  # loads the search's finished checkpoint
    supernet.eval()
    evaluator = Evaluator(supernet, data)
    recipe = FinalizeConfig(epochs=args.epochs, patience=args.patience, lr=config.finalize.lr)
    picked = pick_archs(result.candidates, result.front, args.references)
    print(f"{len(picked)} references trained from scratch, up to {args.epochs} epochs (patience {args.patience}):")
    best = 0.0
    for i, c in enumerate(picked):
        model = fresh(evaluator.supernet.extract(space.parse(c.arch)), seed=100 + i)
        t1 = time.perf_counter()
        out = fine_tune(model, data, recipe, Reporter(), seed=i)
        test = accuracy(model, data.x_test, data.y_test)
        best = max(best, test)
        print(f"  {c.arch_id[:12]}  supernet val {c.metrics['accuracy']:.4f}  stand-alone val {out['val_accuracy']:.4f} "
              f"test {test:.4f}  ({out['epochs']:.0f} epochs, {time.perf_counter() - t1:.0f} s)", flush=True)
    gap = 100 * (best - delivered.metrics["test_accuracy"])
    print(f"best reference test accuracy {best:.4f}; delivered {delivered.metrics['test_accuracy']:.4f}; "
          f"gap {gap:+.1f} points (target <= 1.0) in {wall / 60:.1f} min (target <= 20)")


if __name__ == "__main__":
    main()

"""run_search(config, reporter, workdir) -> SearchResult: train -> search -> finalize -> test.

Everything a run produces lives in `workdir`: the training checkpoint (a rerun resumes from it),
the supernet weights, every evaluated candidate (candidates.jsonl, reused on a rerun), fine-tuned
weights and result.json. The Ray workers run this same function.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.budget import SHARES, SHARES_WITH_TRUST, Budget
from nas.data import DataSplits, prepare
from nas.device import amp_dtype, resolve_device
from nas.evaluate import AccuracyPool, AccuracyScorer, Evaluator, LocalPool
from nas.export.model import export_network, save_network
from nas.files import save_tensors, write_text_atomic
from nas.finalize import FineTuner, Trained, fresh, local_fine_tuner
from nas.progress import Cancelled, ForwardingReporter, Reporter
from nas.rundir import CANDIDATES, CONFIG, RESULT, STUDY, SUPERNET_WEIGHTS, saved_model
from nas.schemas import Candidate, SearchConfig, SearchResult
from nas.search import Objectives, hypervolume, make_strategy
from nas.search.loop import front_of, run_strategy
from nas.search.objectives import MAXIMIZE
from nas.search.strategies import StudyRef
from nas.search.surrogate import Screened, held_out_quality
from nas.train import train_supernet
from nas.trust import trust_report
from search_spaces import Arch, HybridSupernet, SearchSpaceSpec, UserError


class RunDirError(UserError):
    """The output folder holds a run of a different config."""


def claim_workdir(workdir: Path, config: SearchConfig) -> None:
    """Remember the config in `workdir`; refuse to resume a run of another config there."""
    workdir.mkdir(parents=True, exist_ok=True)
    stamp = workdir / CONFIG
    text = config.model_dump_json(indent=2)
    if stamp.exists() and json.loads(stamp.read_text()) != json.loads(text):
        raise RunDirError(f"{workdir} holds a run of a different config; choose another output folder")
    if not stamp.exists():
        write_text_atomic(stamp, text)


def latency_function(config: SearchConfig, space: SearchSpaceSpec, reporter: Reporter) -> Callable[[Arch], float] | None:
    """The latency_ms objective: the table's predictor for `space`, after measuring the layers it lacks."""
    if not config.hardware:
        return None
    from nas.latency import search_predictor  # only needed with a table

    def progress(_phase: str, n: int, total: int) -> None:
        if reporter.should_stop():
            raise Cancelled("stopped while measuring latency-table layers")
        reporter.progress("latency", n, total)

    return search_predictor(config.hardware, space, measure_missing=config.latency.measure_missing,
                            calibrate=config.latency.calibrate, progress=progress, note=reporter.message,
                            guard=reporter.holding)


def latency_summary(predictor: Any) -> dict[str, Any] | None:
    """What result.json and the exports say of the latency figures: which profile, calibrated how."""
    if predictor is None:
        return None
    profile = predictor.table.profile
    return {"profile": profile.name, "device": profile.device, "backend": profile.backend,
            "batch_size": profile.batch_size, "threads": profile.threads, "allocator": profile.allocator,
            "machine": profile.machine.model_dump() if profile.machine else None, "calibration": predictor.scale}


def remeasure(config: SearchConfig, space: SearchSpaceSpec, front: list[Candidate], reporter: Reporter) -> list[Candidate]:
    """The device calibration loop: the front measured end to end on this host when it is the table's machine,
    `measured_latency_ms` recorded beside the prediction, the residuals folded into the table."""
    from nas.latency import TableError, remeasure_front

    if not (config.hardware and config.latency.remeasure_front and front):
        return front
    reporter.phase("remeasure", len(front))
    archs = [space.parse(c.arch) for c in front]
    try:
        rows = remeasure_front(config.hardware, space, archs,
                               lambda _p, n, total: reporter.progress("remeasure", n, total), reporter.holding)
    except TableError as err:  # not the profile's machine, or a table without a reference
        reporter.message(f"the front's latency was not re-measured: {err}")
        return front
    within = sum(abs(r["predicted_ms"] - r["measured_ms"]) <= 0.1 * r["measured_ms"] for r in rows)
    reporter.message(f"front re-measured on this host: {within} of {len(rows)} within ±10% of the prediction; "
                     "the residuals now refine the table's overhead terms")
    return [c.model_copy(update={"metrics": c.metrics | {"measured_latency_ms": r["measured_ms"]}})
            for c, r in zip(front, rows, strict=True)]


def reference_point(objectives: Objectives, evaluator: Evaluator, space: SearchSpaceSpec) -> dict[str, float]:
    """Hypervolume reference: error 1.0 for accuracy; 1.1 x the largest subnet's cost otherwise."""
    cost = evaluator.cost(space.largest())
    return {n: 1.0 if n in MAXIMIZE else 1.1 * cost[n] for n in objectives.names}


def normalized_hypervolume(front: list[Candidate], objectives: Objectives, ref: dict[str, float]) -> float:
    """Hypervolume of the front with each minimized objective divided by its reference value."""
    if not front:
        return 0.0
    scale = np.array([ref[n] for n in objectives.names])
    points = np.stack([objectives.minimized(c.metrics) for c in front]) / scale
    return hypervolume(points, np.ones(len(scale)))


class _Eta(ForwardingReporter):
    """Adds the search's ETA under the budget (`eta_s`, seconds) to every progress event, and starts the budget's
    record of the phases the engine announces that the pipeline did not start itself."""

    def __init__(self, inner: Reporter, budget: Budget):
        super().__init__(inner)
        self.budget = budget

    def phase(self, name: str, total: int) -> None:
        if self.budget.current is None or self.budget.current[0] != name:
            self.budget.start(name)
        super().phase(name, total)

    def progress(self, name: str, step: int, total: int, metrics: dict[str, float] | None = None) -> None:
        eta = self.budget.eta(step, total)
        super().progress(name, step, total, metrics if eta is None else (metrics or {}) | {"eta_s": eta})


class _CandidateLog(ForwardingReporter):
    """Appends each new candidate to candidates.jsonl (so a rerun skips its evaluation), then forwards."""

    def __init__(self, inner: Reporter, path: Path, logged: set[str]):
        super().__init__(inner)
        self.path, self.logged = path, logged

    def candidate(self, candidate: Candidate) -> None:
        if candidate.arch_id not in self.logged:
            with self.holding(), open(self.path, "a") as f:
                f.write(candidate.model_dump_json() + "\n")
            self.logged.add(candidate.arch_id)
        self.inner.candidate(candidate)


def _logged_candidates(path: Path) -> list[Candidate]:
    """The candidates earlier attempts evaluated, in their order."""
    if not path.exists():
        return []
    logged: dict[str, Candidate] = {}
    for line in path.read_text().splitlines():
        try:
            c = Candidate.model_validate_json(line)
        except ValueError:
            continue  # a line torn by a crash
        logged.setdefault(c.arch_id, c)
    return list(logged.values())


# (the scorer to ship to workers, the search's reporter) -> where the candidates' accuracies are computed
PoolFactory = Callable[[AccuracyScorer, Reporter], AccuracyPool]


def run_search(config: SearchConfig, reporter: Reporter | None = None, workdir: str | Path | None = None,
               study: StudyRef | None = None, pool: PoolFactory | None = None,
               tuner: FineTuner = local_fine_tuner) -> SearchResult:
    """Run (or resume, from what `workdir` holds) a search. `study` is where NSGA-II's Optuna study lives
    (default: study.db in `workdir`); `pool` makes the evaluation workers (default: this process) and `tuner`
    trains the finalists (default: one after another, in this process)."""
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="nas-run-"))
    claim_workdir(workdir, config)
    budget = Budget(config.budget.minutes, SHARES_WITH_TRUST if config.trust.enabled is True else SHARES)
    reporter = _Eta(reporter or Reporter(), budget)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    device = resolve_device(config.compute.device)
    amp = amp_dtype(device, config.compute.precision)
    raw, space = prepare(config)
    data = raw.normalized().to(device)
    latency = latency_function(config, space, reporter)

    torch.manual_seed(config.train.seed)
    supernet = HybridSupernet.from_spec(space).to(device)
    train_supernet(supernet, data, config.train, workdir, reporter, amp=amp, budget=budget)
    save_tensors(workdir / SUPERNET_WEIGHTS, supernet, guard=reporter.holding)
    supernet.eval()
    timings["train_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    evaluator = Evaluator(supernet, data, config.search.bn_batches, config.train.batch_size, latency, config.search.seed)
    logged = _logged_candidates(workdir / CANDIDATES)
    evaluator.cache.update({c.arch_id: c.metrics for c in logged})
    objectives = Objectives(config.objectives, config.constraints)
    strategy = make_strategy(space, objectives, config.search, study or StudyRef(f"sqlite:///{workdir / STUDY}", "search"))
    if config.search.screen_factor > 1:
        strategy = Screened(strategy, evaluator.cost, config.search.screen_factor, config.search.screen_after)
    workers = (pool or (lambda scorer, _: LocalPool(scorer)))(evaluator.scorer, reporter)
    try:
        candidates = run_strategy(strategy, lambda archs: evaluator.evaluate_many(archs, workers),
                                  config.search.evaluations,
                                  _CandidateLog(reporter, workdir / CANDIDATES, {c.arch_id for c in logged}),
                                  config.search.population, done=logged, batch=workers.size,
                                  deadline=budget.start("search"))
    finally:
        workers.close()
    front = front_of(candidates, objectives)
    predictor = held_out_quality(space, [space.parse(c.arch) for c in candidates], [c.metrics for c in candidates],
                                 seed=config.search.seed)
    timings["search_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    front = finalize_front(front, evaluator, config, data, workdir, reporter, tuner, budget.start("finetune").left())
    timings["finalize_s"] = time.perf_counter() - t2
    trust = None
    if trust_wanted(config, front, budget, reporter):
        t3 = time.perf_counter()
        trust = trust_report(candidates, front, evaluator, data, config.trust, tuner, reporter, amp,
                             budget.start("trust").left())
        timings["trust_s"] = time.perf_counter() - t3
    front = remeasure(config, space, front, reporter)
    reporter.front(front)

    by_id = {c.arch_id: c for c in front}
    candidates = [by_id.get(c.arch_id, c) for c in candidates]
    ref = reference_point(objectives, evaluator, space)
    result = SearchResult(
        config=config, space=space.model_dump(mode="json"),
        normalization={"mean": raw.mean, "std": raw.std},
        front=front, candidates=candidates,
        hypervolume=normalized_hypervolume(front, objectives, ref), reference_point=ref, timings=timings,
        latency=latency_summary(latency), predictor=predictor, trust=trust.model_dump(mode="json") if trust else None,
    )
    write_text_atomic(workdir / RESULT, result.model_dump_json(indent=2), reporter.holding)
    return result


INITS = {"auto": ("inherited", "scratch"), "inherited": ("inherited",), "scratch": ("scratch",)}


def train_finalists(
    front: list[Candidate], evaluator: Evaluator, config: SearchConfig, data: DataSplits, reporter: Reporter,
    tuner: FineTuner, seconds: float | None,
) -> tuple[dict[str, nn.Module], dict[str, Trained], dict[str, str]]:
    """The top-k front archs by accuracy, each trained from every start `finalize.init` names (inherited weights,
    re-initialised) within `seconds` in all; per arch id: the model that validated best, its training and its
    start."""
    space, cfg = evaluator.supernet.space, config.finalize
    ranked = sorted(front, key=lambda c: -c.metrics.get("accuracy", 0.0))[: cfg.top_k]
    starts: dict[str, nn.Module] = {}
    for i, c in enumerate(ranked):
        arch = space.parse(c.arch)
        for init in INITS[cfg.init]:
            starts[f"{c.arch_id}:{init}"] = (evaluator.subnet(arch) if init == "inherited" else
                                             fresh(evaluator.supernet.extract(arch).to(data.x_train.device), seed=i))
    reporter.phase("finetune", len(starts))
    trained = tuner("finetune", starts, data, cfg, reporter, amp_dtype(data.x_train.device, config.compute.precision),
                    seconds)
    models, tuned, picked = {}, {}, {}
    for c in ranked:
        best = max(INITS[cfg.init], key=lambda init: trained[f"{c.arch_id}:{init}"].metrics["val_accuracy"])
        key = f"{c.arch_id}:{best}"
        models[c.arch_id], tuned[c.arch_id], picked[c.arch_id] = starts[key], trained[key], best
    return models, tuned, picked


def trust_wanted(config: SearchConfig, front: list[Candidate], budget: Budget, reporter: Reporter) -> bool:
    """Whether to make the trust report: when asked to, or by default when the budget allows: the time left is
    at least `trust.archs` times the mean training time of a finalist (their trainings are the estimate)."""
    if config.trust.enabled is not None:
        return config.trust.enabled
    left = budget.remaining()
    took = [c.metrics["finetuned_seconds"] for c in front if "finetuned_seconds" in c.metrics]
    if left is None or not took:
        return False
    needed = config.trust.archs * sum(took) / len(took)
    if left < needed:
        reporter.message(f"no trust report: {left:.0f} s of the budget are left and it would take about "
                         f"{needed:.0f} s (trust: {{enabled: true}} makes one anyway)")
        return False
    return True


def finalize_front(
    front: list[Candidate], evaluator: Evaluator, config: SearchConfig, data: DataSplits, workdir: Path,
    reporter: Reporter, tuner: FineTuner = local_fine_tuner, seconds: float | None = None,
) -> list[Candidate]:
    """Test accuracy for every front arch; the top-k by accuracy trained to their best first (within `seconds`)
    when finalize is on."""
    space = evaluator.supernet.space
    models: dict[str, nn.Module] = {}  # the finalists; the other front archs are extracted one at a time below
    tuned: dict[str, Trained] = {}
    picked: dict[str, str] = {}
    if config.finalize.enabled:
        models, tuned, picked = train_finalists(front, evaluator, config, data, reporter, tuner, seconds)
    reporter.phase("finalize", len(front))
    out = []
    for i, cand in enumerate(front):
        arch = space.parse(cand.arch)
        model = models[cand.arch_id] if cand.arch_id in models else evaluator.subnet(arch)
        metrics, trial_id = dict(cand.metrics), None
        if cand.arch_id in tuned:
            metrics |= {f"finetuned_{k}": v for k, v in tuned[cand.arch_id].metrics.items()}
            metrics["finetuned_from_scratch"] = float(picked[cand.arch_id] == "scratch")
            trial_id = tuned[cand.arch_id].trial_id
        metrics["test_accuracy"] = evaluator.test_accuracy(arch, model)
        exported = export_network(evaluator.supernet, arch, data.mean, data.std, model)
        save_network(exported, space.input_shape, saved_model(workdir, cand.arch_id), reporter.holding)
        out.append(cand.model_copy(update={"metrics": metrics, "trial_id": trial_id}))
        reporter.progress("finalize", i + 1, len(front), {"test_accuracy": metrics["test_accuracy"]})
    return out

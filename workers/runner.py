"""run_search_job: what a Ray worker runs for one claimed attempt of a search."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from nas.latency.table import LatencyTable
from nas.pipeline import run_search
from nas.rundir import RESULT
from nas.schemas import SearchConfig
from nas.search.strategies import StudyRef
from nas.store import Database, repo
from workers.attempt import JobFiles, run_attempt
from workers.evaluation_pool import make_pool
from workers.kinds import JobKind, register_job_kind
from workers.reporter import DatabaseReporter
from workers.tune_finalize import tune_fine_tuner


def run_search_job(db_url: str, data_dir: str, job_id: str, attempt: int, lease_seconds: float, threads: int,
                   storage_url: str | None = None) -> str:
    """Run (or resume, from the run folder's checkpoint) one search attempt; returns its end status."""
    work = functools.partial(_search, StudyRef.of_job(db_url, job_id))
    return run_attempt(db_url, data_dir, job_id, attempt, lease_seconds, threads, work, storage_url)


def _fetch_inputs(config: SearchConfig, files: JobFiles) -> None:
    """Fetch the search's dataset and latency table to this worker (the table afresh: other searches grow it)."""
    if config.dataset.path:
        files.here(config.dataset.path)
    if config.hardware:
        files.here(config.hardware, refresh=True)


def _search(study: StudyRef, db: Database, config: dict[str, Any], reporter: DatabaseReporter,
            files: JobFiles) -> dict[str, Any]:
    search_config = SearchConfig.model_validate(config)
    _fetch_inputs(search_config, files)
    workdir = files.workdir
    cuda = search_config.compute.device.startswith("cuda")
    pool = functools.partial(make_pool, workers=search_config.search.workers, cuda=cuda)
    result = run_search(search_config, reporter, workdir, study, pool=pool,
                        tuner=tune_fine_tuner(files.store, workdir / "tune", cuda=cuda))
    ids: dict[str, Any] = {"job_id": reporter.job_id, "attempt": reporter.attempt}
    if search_config.hardware:  # the search may have measured layers into it, binding its profile to this machine
        table = LatencyTable.load(search_config.hardware)
        files.store.push(search_config.hardware)
        repo.table_measured(db, path=search_config.hardware, spaces=table.space_names(), entries=len(table.entries),
                            profile_spec=table.profile.model_dump(mode="json"))
    repo.set_front(db, front=result.front, **ids)
    path = workdir / RESULT
    repo.add_artifact(db, kind="result", path=str(path), size=path.stat().st_size,
                      sha256=hashlib.sha256(path.read_bytes()).hexdigest(), **ids)
    return {"hypervolume": result.hypervolume}


def _resources(config: dict[str, Any]) -> dict[str, Any]:
    """What a search asks Ray for (`compute.cpus`, `compute.gpus`). A search on a GPU asks for one by default:
    Ray hides the GPUs from a task that did not ask (so `auto` runs on the CPU through the service unless the
    config names cuda or gpus)."""
    try:
        compute = SearchConfig.model_validate(config).compute
    except ValueError:  # the attempt itself fails with the validation message
        return {}
    gpus = compute.gpus if compute.gpus is not None else (1.0 if compute.device.startswith("cuda") else 0.0)
    return {"num_cpus": compute.cpus} | ({"num_gpus": gpus} if gpus else {})


register_job_kind(JobKind("search", run_search_job, _resources))

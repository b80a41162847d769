"""run_latency_job: build (resumably), validate and register a latency table, as one queued job."""

from __future__ import annotations

import json
from typing import Any

from nas.latency import HardwareProfile, Machine, build_table, validate_table
from nas.progress import Cancelled
from nas.schemas import LatencyBuildRequest, ProfileSettings
from nas.store import Database, repo
from search_spaces import UserError, get_space
from workers.attempt import JobFiles, run_attempt
from workers.kinds import JobKind, register_job_kind
from workers.reporter import DatabaseReporter


def run_latency_job(db_url: str, data_dir: str, job_id: str, attempt: int, lease_seconds: float,
                    threads: int, storage_url: str | None = None) -> str:
    """Build (resuming a partial table), validate and register a table; returns the end status."""
    return run_attempt(db_url, data_dir, job_id, attempt, lease_seconds, threads, _job, storage_url)


def _job(db: Database, config: dict[str, Any], reporter: DatabaseReporter, files: JobFiles) -> dict[str, Any]:
    _build(db, LatencyBuildRequest.model_validate(config), files, reporter)
    return {}


def _build(db: Database, request: LatencyBuildRequest, files: JobFiles, reporter: DatabaseReporter) -> None:
    space = get_space(request.space)
    profile = HardwareProfile(
        name=request.name or HardwareProfile.default_name(request.device, request.backend, request.batch_size,
                                                            request.threads),
        machine=Machine.here(request.device), **request.model_dump(include=set(ProfileSettings.model_fields)))
    folder = files.store.root / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    out = files.here(str(folder / f"build-{reporter.job_id}.json"))  # resumed by a later attempt

    def progress(phase: str, n: int, total: int) -> None:
        if reporter.should_stop():
            raise Cancelled(f"stopped during {phase}")
        reporter.progress(phase, n, total)

    table = build_table(space, profile, out, request.calibration, progress=progress, guard=reporter.holding)
    files.store.push(out)
    report = validate_table(table, space, request.validation_samples, progress=progress)
    with db.session() as s:
        repo.hold(s, job_id=reporter.job_id, attempt=reporter.attempt)  # a lost attempt registers nothing
        job = repo.get_job(s, reporter.job_id)
        owner = repo.user_by_id(s, job.owner_id) if job else None
        if owner is None:  # the job (or its owner) was deleted while it ran
            raise UserError("the build's job or its owner no longer exists")
        repo.register_table(s, owner=owner, profile_name=profile.name, profile_spec=profile.model_dump(mode="json"),
                            space=space.name, entries=len(table.entries), report=json.loads(json.dumps(report)),
                            path=str(out))
    reporter.message(f"registered the table: {100 * report['within_10pct']:.0f}% within ±10%, "
                     f"Kendall {report['kendall_tau']:.3f}")


def _resources(config: dict[str, Any]) -> dict[str, Any]:
    """A build for a GPU runs on a worker that has one."""
    return {"num_gpus": 1} if str(config.get("device", "cpu")).startswith("cuda") else {}


register_job_kind(JobKind("latency", run_latency_job, _resources))

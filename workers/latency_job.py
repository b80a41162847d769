"""run_latency_job: build (resumably), validate and register a latency table, as one queued job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, Field

from nas.latency import HardwareProfile, Machine, build_table, validate_table
from nas.progress import Cancelled
from nas.store import Database, StaleAttempt, repo
from nas.store.models import HardwareProfileRow, LatencyTableRow
from search_spaces import get_space
from workers.reporter import DatabaseReporter
from workers.runner import worker_name


class LatencyBuildRequest(BaseModel):
    """What `POST /api/v1/hardware/builds` queues."""

    space: str = "hybrid-small"
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?)$")
    backend: str = Field("torch", pattern=r"^(torch|onnxruntime)$")
    batch_size: int = Field(1, ge=1, le=1024)
    threads: int = Field(2, ge=1, le=256)
    repeats: int = Field(100, ge=3, le=10_000)
    calibration: int = Field(40, ge=0, le=1000)
    validation_samples: int = Field(100, ge=3, le=10_000)
    name: str | None = Field(None, max_length=100)


def run_latency_job(db_url: str, data_dir: str, search_id: str, attempt: int, lease_seconds: float,
                    threads: int) -> str:
    db = Database(db_url)
    try:
        with db.session() as s:
            job = repo.get_search(s, search_id)
            if job is None or job.attempt != attempt or job.status != "running":
                return "stale"
            request = LatencyBuildRequest.model_validate(job.config)
        torch.set_num_threads(request.threads)
        reporter = DatabaseReporter(db, search_id=search_id, attempt=attempt, owner=worker_name(),
                                    lease_seconds=lease_seconds)
        ids: dict[str, Any] = {"search_id": search_id, "attempt": attempt}
        try:
            status = _build(db, request, Path(data_dir), reporter)
            repo.finish(db, status=status, **ids)
            return status
        except Cancelled:
            if reporter.lost.is_set():
                return "stale"
            repo.finish(db, status="cancelled", **ids)
            return "cancelled"
        except ValueError as err:
            repo.finish(db, status="failed", error=str(err), **ids)
            return "failed"
        finally:
            reporter.close()
    except StaleAttempt:
        return "stale"
    finally:
        db.dispose()


def _build(db: Database, request: LatencyBuildRequest, data_dir: Path, reporter: DatabaseReporter) -> str:
    space = get_space(request.space)
    profile = HardwareProfile(
        name=request.name or f"{request.device}-{request.backend}-b{request.batch_size}-t{request.threads}",
        device=request.device, backend=request.backend, threads=request.threads,  # type: ignore[arg-type]
        batch_size=request.batch_size, repeats=request.repeats, machine=Machine.here(request.device))
    folder = data_dir / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"build-{reporter.search_id}.json"  # resumed by a later attempt

    def progress(phase: str, n: int, total: int) -> None:
        if reporter.should_stop():
            raise Cancelled(f"stopped during {phase}")
        reporter.progress(phase, n, total)

    table = build_table(space, profile, out, request.calibration, progress=progress)
    report = validate_table(table, space, request.validation_samples, progress=progress)
    with db.session() as s:
        row = s.query(HardwareProfileRow).filter_by(name=profile.name).one_or_none()
        if row is None:
            row = HardwareProfileRow(name=profile.name, spec=profile.model_dump(mode="json"))
            s.add(row)
            s.flush()
        s.add(LatencyTableRow(profile_id=row.id, space=space.name, path=str(out), entries=len(table.entries),
                              report=json.loads(json.dumps(report))))
    reporter.message(f"registered the table: {100 * report['within_10pct']:.0f}% within ±10%, "
                     f"Kendall {report['kendall_tau']:.3f}")
    return "succeeded"

"""Hardware: latency tables uploaded by users (built with `nas latency build` on the device) and their
validation reports. A registered table can be named in a search config's `hardware` field."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, UploadFile

from api.deps import MAX_INT, CurrentUser, SessionDep, SettingsDep
from api.errors import InvalidField, error_responses
from api.models import Submitted
from nas.latency.table import LatencyTable, TableError
from nas.schemas import LatencyBuildRequest
from nas.store import repo
from nas.store.models import HardwareProfileRow, LatencyTableRow
from search_spaces import list_presets

router = APIRouter(prefix="/api/v1/hardware", tags=["hardware"])


def table_summary(row: LatencyTableRow, profile: HardwareProfileRow) -> dict:
    return {"id": row.id, "space": row.space, "entries": row.entries, "profile": profile.spec,
            "report": row.report, "created_at": row.created_at}


@router.get("/tables", responses=error_responses(401))
def list_tables(user: CurrentUser, s: SessionDep) -> list[dict]:
    return [table_summary(t, p) for t, p in repo.latency_tables(s)]


@router.get("/tables/{table_id}", responses=error_responses(401, 404))
def show_table(table_id: Annotated[int, Path(ge=1, le=MAX_INT)], user: CurrentUser, s: SessionDep) -> dict:
    found = repo.latency_table(s, table_id)
    if found is None:
        raise HTTPException(404, f"latency table {table_id} not found")
    return table_summary(*found)


@router.post("/tables", status_code=201, responses=error_responses(401, 413, 422))
def upload_table(file: UploadFile, user: CurrentUser, s: SessionDep, settings: SettingsDep,
                 report: UploadFile | None = None) -> dict:
    """Register a table file (and optionally its `nas latency validate` report). A plain `def`: parsing up to
    the request size limit of JSON runs in the thread pool, not on the event loop."""
    import json

    folder = settings.data_dir / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        table = LatencyTable.model_validate_json(file.file.read())
        report_data = json.loads(report.file.read()) if report is not None else {}
    except (ValueError, TableError) as err:
        raise InvalidField(("body", "file"), f"not a latency table ({str(err)[:300]})") from None
    row, profile = repo.register_table(
        s, profile_name=table.profile.name, profile_spec=table.profile.model_dump(mode="json"), space=table.space.name,
        entries=len(table.entries), report=report_data if isinstance(report_data, dict) else {})
    row.path = str(folder / f"{row.id}.json")  # named by id, never by the upload's name
    table.save(row.path)
    return table_summary(row, profile)


@router.post("/builds", status_code=202, response_model=Submitted, responses=error_responses(401, 413, 422))
def request_build(body: LatencyBuildRequest, response: Response, user: CurrentUser, s: SessionDep,
                  settings: SettingsDep) -> Submitted:
    """Queue a table build (measure layers, fit, validate, register) on a worker with the device.
    Follow it at GET /api/v1/jobs/{id} and its events."""
    if body.space not in list_presets():
        raise InvalidField(("body", "space"), f"unknown preset {body.space!r}; choose one of {', '.join(list_presets())}")
    job, _ = repo.submit_job(s, owner_id=user.id, config=body.model_dump(mode="json"), kind="latency",
                                name=f"latency table: {body.space}", max_attempts=settings.max_attempts)
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return Submitted(id=job.id, status=job.status, created=True)

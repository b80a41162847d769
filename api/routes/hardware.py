"""Hardware: profiles (how and where latency is measured) and latency tables uploaded by users (built with
`nas latency build` on the device), built through the queue, or grown by searches, with their validation
reports. A table is its owner's, or shared with every user (an admin's tables, or one an admin shares); a
search config's `hardware` field names a visible table by id, or a profile by name (its newest visible table,
or a new one that the search's worker fills with the layers it needs)."""

from __future__ import annotations

from pathlib import Path as PathLib
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from api.deps import DB, MAX_INT, AdminUser, CurrentUser, SessionDep, SettingsDep
from api.errors import InvalidField, error_responses
from api.models import Submitted, utc
from nas.latency.profile import HardwareProfile
from nas.latency.table import LatencyTable, TableError
from nas.schemas import LatencyBuildRequest, ProfileRequest
from nas.store import repo
from nas.store.models import HardwareProfileRow, LatencyTableRow, User
from search_spaces import list_presets

router = APIRouter(prefix="/api/v1/hardware", tags=["hardware"])


TableId = Annotated[int, Path(ge=1, le=MAX_INT)]


class ValidationReport(BaseModel):
    """What a registered report must look like (`nas latency validate --out`): the figures the hardware page
    and the API show are numbers, so no report can break them; other fields are kept as they are."""

    model_config = ConfigDict(extra="allow")
    n: int | None = Field(None, ge=0)
    mape: float | None = None
    rmse_ms: float | None = None
    within_5pct: float | None = Field(None, ge=0, le=1)
    within_10pct: float | None = Field(None, ge=0, le=1)
    kendall_tau: float | None = Field(None, ge=-1, le=1)
    spearman_rho: float | None = Field(None, ge=-1, le=1)
    noise_floor: dict[str, float | int] | None = None


def table_summary(row: LatencyTableRow, profile: HardwareProfileRow) -> dict:
    return {"id": row.id, "space": row.space, "entries": row.entries, "profile": row.profile_spec, "profile_name": profile.name,
            "report": row.report, "owner_id": row.owner_id, "shared": row.shared, "created_at": utc(row.created_at)}


def visible_table(s, table_id: int, user: User) -> tuple[LatencyTableRow, HardwareProfileRow]:
    found = repo.latency_table(s, table_id, user)
    if found is None:  # someone else's private table is indistinguishable from a missing one
        raise HTTPException(404, f"latency table {table_id} not found")
    return found


def profile_summary(row: HardwareProfileRow) -> dict:
    return {"id": row.id, "name": row.name, "spec": row.spec, "created_at": utc(row.created_at)}


@router.get("/profiles", responses=error_responses(401))
def list_profiles(user: CurrentUser, s: SessionDep) -> list[dict]:
    """Every registered hardware profile (profiles are names shared by all users; tables are not)."""
    return [profile_summary(p) for p in repo.profiles(s)]


@router.post("/profiles", status_code=201, responses=error_responses(401, 409, 413, 422))
def register_profile(body: ProfileRequest, user: CurrentUser, s: SessionDep) -> dict:
    """Register a profile that searches can name (`hardware: <name>`) before any table of it exists: the first
    search's worker measures the layers it needs on its machine, which the profile is then bound to."""
    if repo.profile_by_name(s, body.name) is not None:
        raise HTTPException(409, f"a hardware profile named {body.name!r} exists (GET /api/v1/hardware/profiles)")
    spec = HardwareProfile(**body.model_dump()).model_dump(mode="json")
    return profile_summary(repo.profile_named(s, name=body.name, spec=spec))


@router.get("/tables", responses=error_responses(401))
def list_tables(user: CurrentUser, s: SessionDep) -> list[dict]:
    """Your tables and the shared ones (admins see all)."""
    return [table_summary(t, p) for t, p in repo.latency_tables(s, user)]


@router.get("/tables/{table_id}", responses=error_responses(401, 404, 422))
def show_table(table_id: TableId, user: CurrentUser, s: SessionDep) -> dict:
    return table_summary(*visible_table(s, table_id, user))


@router.post("/tables/{table_id}/share", responses=error_responses(401, 403, 404, 422))
def share_table(table_id: TableId, admin: AdminUser, s: SessionDep, shared: bool = True) -> dict:
    """Share a table with every user (or, with shared=false, make it its owner's again). Admins only."""
    row, profile = visible_table(s, table_id, admin)
    row.shared = shared
    return table_summary(row, profile)


@router.delete("/tables/{table_id}", status_code=204, responses=error_responses(401, 403, 404, 422))
def delete_table(table_id: TableId, user: CurrentUser, db: DB, settings: SettingsDep) -> Response:
    """Delete one of your tables (admins: any) and its file; searches that used it keep their results."""
    with db.session() as s:
        row, _ = visible_table(s, table_id, user)
        if row.owner_id != user.id and not user.is_admin:
            raise HTTPException(403, f"latency table {table_id} is shared by an admin: only an admin can delete it")
        path = row.path
        repo.delete_table(s, table=row)
    PathLib(path).unlink(missing_ok=True)  # after the commit, as for searches
    settings.artifact_store().delete(path)
    return Response(status_code=204)


@router.post("/tables", status_code=201, responses=error_responses(400, 401, 413, 422))
def upload_table(file: UploadFile, user: CurrentUser, s: SessionDep, settings: SettingsDep,
                 report: UploadFile | None = None) -> dict:
    """Register a table file (and optionally its `nas latency validate` report). A plain `def`: parsing up to
    the request size limit of JSON runs in the thread pool, not on the event loop."""
    import json

    folder = settings.data_dir / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        table = LatencyTable.model_validate_json(file.file.read())
    except (ValueError, TableError) as err:
        raise InvalidField(("body", "file"), f"not a latency table ({str(err)[:300]})") from None
    try:
        checked = ValidationReport.model_validate_json(report.file.read()) if report is not None else None
    except ValueError as err:
        raise InvalidField(("body", "report"), f"not a validation report ({str(err)[:300]})") from None
    row, profile = repo.register_table(
        s, owner=user, profile_name=table.profile.name, profile_spec=table.profile.model_dump(mode="json"),
        space=table.space_names(), entries=len(table.entries),
        report=json.loads(checked.model_dump_json(exclude_none=True)) if checked else {})
    row.path = str(folder / f"{row.id}.json")  # named by id, never by the upload's name
    table.save(row.path)
    settings.artifact_store().push(row.path)
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

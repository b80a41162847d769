"""Searches: submit, list, get, cancel, delete; candidates, front, live events (SSE) and exports."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Response
from fastapi.responses import FileResponse

from api.deps import DB, MAX_INT, CurrentUser, SessionDep, SettingsDep, owned_search
from api.errors import InvalidField, error_responses
from api.models import CandidateList, CandidateOut, FrontItem, JobList, Status, Submitted
from api.routes.jobs import add_job_routes, job_page
from nas.export import FORMATS, ExportError, export_candidate, export_file_name
from nas.latency.profile import HardwareProfile
from nas.latency.table import LatencyTable
from nas.rundir import EXPORTS, RESULT, SUPERNET_WEIGHTS, job_workdir, saved_model
from nas.schemas import SearchConfig, SearchResult
from nas.settings import Settings
from nas.storage import ArtifactStore
from nas.store import repo
from nas.store.models import FINISHED, LatencyTableRow, User
from nas.trust import TrustReport
from search_spaces import list_presets

router = APIRouter(prefix="/api/v1/searches", tags=["searches"])
ExportFormatName = StrEnum("ExportFormatName", {name: name for name in FORMATS.names()})  # type: ignore[misc]


def budget_limits(settings: Settings) -> dict[tuple[str, str], int]:
    """The operator's caps on what one search may ask for, by config field."""
    return {("train", "steps"): settings.max_train_steps, ("train", "epochs"): settings.max_train_epochs,
            ("budget", "minutes"): settings.max_budget_minutes, ("train", "random_subnets"): settings.max_random_subnets,
            ("search", "evaluations"): settings.max_evaluations, ("search", "population"): settings.max_population,
            ("finalize", "epochs"): settings.max_finalize_epochs, ("finalize", "top_k"): settings.max_finalize_top_k}


def check_submittable(s, config: SearchConfig, user: User, settings: Settings, priority: int) -> None:
    """What pydantic cannot check: the operator's budget limits and priorities, presets only, datasets only
    from the user's own uploads, registered latency tables."""
    for (section, field), cap in budget_limits(settings).items():
        value = getattr(getattr(config, section), field)
        if value is not None and value > cap:
            raise InvalidField(("body", section, field), f"{value} is more than this server allows ({cap})")
    if priority > settings.max_user_priority and not user.is_admin:
        raise InvalidField(("query", "priority"), f"at most {settings.max_user_priority} for users (admins: 100)")
    if config.space not in list_presets():
        raise InvalidField(("body", "space"), f"unknown preset {config.space!r}; choose one of {', '.join(list_presets())}")
    if config.dataset.path:
        uploads = (settings.data_dir / "datasets" / str(user.id)).resolve()
        path = Path(config.dataset.path).resolve()
        if uploads not in path.parents or not settings.artifact_store().pull(path).exists():
            raise InvalidField(("body", "dataset", "path"), "not one of your uploaded datasets (POST /api/v1/datasets first)")
    if config.hardware:
        config.hardware = resolve_hardware(s, config.hardware, user, settings).path  # the workers read the file


def resolve_hardware(s, ref: str, user: User, settings: Settings) -> LatencyTableRow:
    """A search's `hardware`: a visible table by id, or a registered profile by name (its newest visible
    table, or a new empty one of the user's that the search's worker fills). Tables are keyed by layers, so
    any table serves any space: the worker measures the layers a space needs that the table lacks."""
    if ref.isascii() and ref.isdigit():
        found = repo.latency_table(s, int(ref), user) if len(ref) < 10 else None
        if found is None:
            raise InvalidField(("body", "hardware"), f"{ref!r} is not a latency table of yours or a shared one "
                                                     "(GET /api/v1/hardware/tables lists them by id)")
        return found[0]
    profile = repo.profile_by_name(s, ref)
    if profile is None:
        raise InvalidField(("body", "hardware"), f"no hardware profile named {ref!r}: register it (POST "
                                                 "/api/v1/hardware/profiles) or name a table by id")
    table = repo.newest_table(s, profile.id, user)
    if table is None:
        table, _ = repo.register_table(s, owner=user, profile_name=profile.name, profile_spec=profile.spec,
                                       space="", entries=0, report={})
        table.shared = False  # grown by this user's searches
        folder = settings.data_dir / "tables"
        folder.mkdir(parents=True, exist_ok=True)
        table.path = str(folder / f"{table.id}.json")
        LatencyTable(profile=HardwareProfile.model_validate(profile.spec)).save(table.path)
        settings.artifact_store().push(table.path)
    return table


@router.post("", status_code=202, response_model=Submitted, responses=error_responses(401, 409, 413, 422))
def submit(
    config: SearchConfig, response: Response, user: CurrentUser, s: SessionDep, settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    name: Annotated[str, Query(max_length=200)] = "", priority: Annotated[int, Query(ge=-100, le=100)] = 0,
) -> Submitted:
    """Queue a search (the body is the engine's SearchConfig). 202 with its id and Location."""
    check_submittable(s, config, user, settings, priority)
    search, created = repo.submit_job(
        s, owner_id=user.id, config=config.model_dump(mode="json"), name=name, priority=priority,
        idempotency_key=idempotency_key, max_attempts=settings.max_attempts,
    )
    response.headers["Location"] = f"/api/v1/searches/{search.id}"
    return Submitted(id=search.id, status=search.status, created=created)


@router.get("", response_model=JobList, responses=error_responses(401, 422))
def list_all(
    user: CurrentUser, s: SessionDep, status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> JobList:
    return job_page(s, user, status, "search", limit, offset)


add_job_routes(router, kind="search")


@router.delete("/{search_id}", status_code=204, responses=error_responses(401, 404, 409))
def delete(search_id: str, user: CurrentUser, db: DB, settings: SettingsDep) -> Response:
    """Delete a finished search with its candidates, events and files."""
    with db.session() as s:
        search = owned_search(s, search_id, user)
        if search.status not in FINISHED:
            raise HTTPException(409, f"search {search.id} is {search.status}: cancel it first")
        job_id = search.id
        repo.delete_job(s, job=search)
    # the rows are gone (committed): only now the files and the Optuna study, so a failed commit never leaves a
    # search without them
    shutil.rmtree(job_workdir(settings.data_dir, job_id), ignore_errors=True)
    settings.artifact_store().delete(job_workdir(settings.data_dir, job_id))
    from nas.search.strategies import StudyRef  # imports Optuna: only when a search is deleted

    StudyRef.of_job(db.url, job_id).delete()
    return Response(status_code=204)


Sort = Literal["accuracy", "macs", "params", "latency_ms", "generation", "created_at"]


@router.get("/{search_id}/candidates", response_model=CandidateList, responses=error_responses(401, 404, 422))
def candidates(
    search_id: str, user: CurrentUser, s: SessionDep, sort: Sort = "accuracy", order: Literal["asc", "desc"] = "desc",
    front_only: bool = False, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> CandidateList:
    search = owned_search(s, search_id, user)
    rows, total = repo.candidates_page(s, search.id, sort=sort, descending=order == "desc", limit=limit,
                                       offset=offset, front_only=front_only)
    return CandidateList(items=[CandidateOut.of(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{search_id}/candidates/{arch_id}", response_model=CandidateOut, responses=error_responses(401, 404))
def candidate(search_id: str, arch_id: str, user: CurrentUser, s: SessionDep) -> CandidateOut:
    search = owned_search(s, search_id, user)
    row = repo.candidate(s, search.id, arch_id)
    if row is None:
        raise HTTPException(404, f"candidate {arch_id} not found in search {search.id}")
    return CandidateOut.of(row)


@router.get("/{search_id}/front", response_model=list[FrontItem], responses=error_responses(401, 404))
def front(search_id: str, user: CurrentUser, s: SessionDep) -> list[FrontItem]:
    """The Pareto front: the same {arch_id, arch, metrics} items as the engine's result.json."""
    search = owned_search(s, search_id, user)
    rows, _ = repo.candidates_page(s, search.id, front_only=True, limit=10_000)
    return [FrontItem(arch_id=r.arch_id, arch=r.arch, metrics=r.metrics) for r in rows]


def search_result(settings: Settings, search_id: str) -> SearchResult | None:
    """A finished search's result.json (from the store when the workers' files are there), if it has one."""
    path = settings.artifact_store().pull(job_workdir(settings.data_dir, search_id) / RESULT)
    return SearchResult.model_validate_json(path.read_text()) if path.exists() else None


@router.get("/{search_id}/trust", response_model=TrustReport, responses=error_responses(401, 404, 409))
def trust(search_id: str, user: CurrentUser, s: SessionDep, settings: SettingsDep) -> TrustReport:
    """The trust report: Kendall tau / Spearman rho between the supernet's accuracy and stand-alone training from
    scratch, per arch (a search with `trust: {enabled: true}`)."""
    search = owned_search(s, search_id, user)
    if search.status != "succeeded":
        raise HTTPException(409, f"search {search.id} is {search.status}: the trust report comes when it has succeeded")
    result = search_result(settings, search.id)
    if result is None or result.trust is None:
        raise HTTPException(404, f"search {search.id} has no trust report: submit it with trust: {{enabled: true}}")
    return TrustReport.model_validate(result.trust)


@router.get("/{search_id}/candidates/{arch_id}/export", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}, **error_responses(401, 404, 409, 422)})
def export(
    search_id: str, arch_id: str, user: CurrentUser, s: SessionDep, settings: SettingsDep,
    format: ExportFormatName = ExportFormatName("onnx"),
) -> FileResponse:
    """Download a candidate as a file (`pytorch` comes as a zip of model.py, weights and README)."""
    search = owned_search(s, search_id, user)
    cand = repo.candidate(s, search.id, arch_id)
    if cand is None:
        raise HTTPException(404, f"candidate {arch_id} not found in search {search.id}")
    arch_id = cand.arch_id  # a prefix resolved
    workdir = job_workdir(settings.data_dir, search.id)
    store = settings.artifact_store()
    if search.status == "succeeded":
        fetch_for_export(store, workdir, arch_id)
    if search.status != "succeeded" or not (workdir / RESULT).exists():
        raise HTTPException(409, f"search {search.id} is {search.status}: exports are ready when it has succeeded")
    fmt = format.value
    name = export_file_name(arch_id, fmt)
    target = workdir / EXPORTS / (f"{name}.zip" if fmt == "pytorch" else name)
    if not target.exists():
        with EXPORTING:
            if not target.exists():  # another request may have made it while this one waited
                try:
                    make_export(workdir, arch_id, fmt, target)
                except ExportError as err:
                    raise HTTPException(422, str(err)) from None
    return FileResponse(target, filename=target.name, media_type="application/octet-stream")


def fetch_for_export(store: ArtifactStore, workdir: Path, arch_id: str) -> None:
    """What an export reads, from the store when the workers' files are there: result.json and the finalist's
    weights, or (another candidate, rebuilt from the supernet) the supernet weights and the dataset."""
    if not store.remote:
        return
    store.pull(workdir / RESULT)
    if store.pull(saved_model(workdir, arch_id)).exists() or not (workdir / RESULT).exists():
        return
    store.pull(workdir / SUPERNET_WEIGHTS)
    dataset = SearchResult.model_validate_json((workdir / RESULT).read_text()).config.dataset.path
    if dataset:
        store.pull(dataset)


# torch.export and the ONNX exporter are not thread-safe, and a non-front export rebuilds a supernet:
# one export at a time per server process; finished exports are files served from then on
EXPORTING = threading.Lock()


def make_export(workdir: Path, arch_id: str, fmt: str, target: Path) -> None:
    """Export into a temporary folder beside `target`, then rename into place: a download never sees a
    partial file, and a crash leaves none behind to be served."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".making-") as tmp:
        made = export_candidate(workdir / RESULT, arch_id, fmt, Path(tmp) / export_file_name(arch_id, fmt))
        if made.is_dir():  # the pytorch folder travels as a zip
            made = Path(shutil.make_archive(str(made), "zip", made))
        os.replace(made, target)

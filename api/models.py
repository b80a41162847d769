"""Response bodies of the REST API (requests reuse the engine's schemas, e.g. SearchConfig)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, overload

from pydantic import BaseModel, Field

from nas.store import repo
from nas.store.models import ApiToken, CandidateRow, Job

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobOut(BaseModel):
    """A job of any kind; a search's has its best metrics and hypervolume."""

    id: str
    name: str
    kind: str
    status: Status
    phase: str
    step: int
    total: int
    progress: float
    eta_seconds: float | None = Field(description=(
        "seconds until the job ends: for a search under a time budget the engine's own estimate (the current phase "
        "at its rate, the phases after it at their share of the budget; a phase that finishes early ends the search "
        "sooner), else extrapolated from the progress so far; null when not running"))
    attempt: int
    max_attempts: int
    best: dict[str, Any]
    hypervolume: float | None
    error: str | None
    error_kind: Literal["user", "internal"] | None
    error_id: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    config: dict[str, Any]

    @classmethod
    def of(cls, s: Job) -> JobOut:
        return cls(
            id=s.id, name=s.name, kind=s.kind, status=s.status, phase=s.phase, step=s.step, total=s.total, progress=s.progress,
            eta_seconds=eta(s), attempt=s.attempt, max_attempts=s.max_attempts, best=s.best or {},
            hypervolume=s.hypervolume, error=s.error, error_kind=s.error_kind,  # type: ignore[arg-type]
            error_id=s.error_id, cancel_requested=s.cancel_requested, created_at=utc(s.created_at),
            started_at=utc(s.started_at), finished_at=utc(s.finished_at), config=s.config,
        )


@overload
def utc(moment: datetime) -> datetime: ...
@overload
def utc(moment: None) -> None: ...
def utc(moment: datetime | None) -> datetime | None:
    """Every timestamp the API sends is timezone-aware UTC (SQLite hands back naive ones)."""
    return None if moment is None else repo.aware(moment)


def eta(s: Job) -> float | None:
    """Seconds left: the engine's own estimate when it gave one (a search under a time budget), else
    extrapolated from the progress made since the job started."""
    if s.status != "running":
        return None
    if s.eta_at is not None:
        return max(0.0, (utc(s.eta_at) - datetime.now(UTC)).total_seconds())
    if not s.started_at or s.progress <= 0.01:
        return None
    elapsed = (datetime.now(UTC) - utc(s.started_at)).total_seconds()
    return max(0.0, elapsed * (1 - s.progress) / s.progress)


class Page(BaseModel):
    total: int
    limit: int
    offset: int


class JobList(Page):
    items: list[JobOut]


class Submitted(BaseModel):
    id: str
    status: Status
    created: bool


class CandidateOut(BaseModel):
    arch_id: str
    arch: dict[str, Any]
    metrics: dict[str, float]
    feasible: bool
    on_front: bool
    generation: int
    worker: str | None = Field(None, description="the worker that evaluated it ('local': in-process)")
    trial_id: str | None = Field(None, description="the Ray Tune trial that fine-tuned it (finalize)")

    @classmethod
    def of(cls, c: CandidateRow) -> CandidateOut:
        return cls(arch_id=c.arch_id, arch=c.arch, metrics=c.metrics, feasible=c.feasible, on_front=c.on_front,
                   generation=c.generation, worker=c.worker, trial_id=c.trial_id)


class CandidateList(Page):
    items: list[CandidateOut]


class FrontItem(BaseModel):
    """The same item shape as the engine's result.json front."""

    arch_id: str
    arch: dict[str, Any]
    metrics: dict[str, float]


class UserCreate(BaseModel):
    name: str
    is_admin: bool = False


class UserCreated(BaseModel):
    id: int
    name: str
    is_admin: bool
    token: str


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="none: never expires")


class TokenOut(BaseModel):
    id: int
    name: str
    hint: str = Field(description="the token's first characters")
    created_at: datetime
    expires_at: datetime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenOut:
        return cls(id=row.id, name=row.name, hint=row.hint, created_at=utc(row.created_at), expires_at=utc(row.expires_at))


class TokenCreated(TokenOut):
    token: str = Field(description="shown once")


class DatasetUploaded(BaseModel):
    name: Literal["npz"] = "npz"
    path: str
    size: int

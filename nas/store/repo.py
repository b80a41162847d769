"""Repository functions: every read and write the service makes. Writes are keyword-only.

The queue holds jobs of registered kinds (searches, latency-table builds, ...). Worker writes are
fenced: they name the attempt they belong to, and a write from an attempt that no longer owns the
job (its lease expired and it was requeued) raises StaleAttempt.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session

from nas.schemas import Candidate
from nas.store.db import Database, is_sqlite
from nas.store.models import (
    FINISHED,
    ApiToken,
    Artifact,
    CandidateRow,
    Event,
    HardwareProfileRow,
    Job,
    LatencyTableRow,
    User,
    utcnow,
)
from search_spaces import UserError

MIN_PREFIX = 6  # shortest id prefix accepted for a job or an arch


class AmbiguousId(UserError):
    """An id prefix matches more than one job or candidate."""


def _by_prefix(s: Session, query: Any, column: Any, id_or_prefix: str, what: str) -> Any:
    """The one row whose `column` is `id_or_prefix` or starts with it (at least MIN_PREFIX characters)."""
    row = s.scalar(query.where(column == id_or_prefix))
    if row is not None or len(id_or_prefix) < MIN_PREFIX or not id_or_prefix.replace("-", "").isalnum():
        return row  # ids are hex and dashes: anything else cannot be a prefix (and needs no LIKE escaping)
    rows = s.scalars(query.where(column.startswith(id_or_prefix)).limit(2)).all()
    if len(rows) > 1:
        raise AmbiguousId(f"{what} id prefix {id_or_prefix!r} matches several; give more characters")
    return rows[0] if rows else None


class StaleAttempt(RuntimeError):
    """A worker wrote for an attempt that no longer owns the job."""


# ---- users and tokens --------------------------------------------------------------------------
def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(s: Session, *, name: str, is_admin: bool = False, token: str | None = None) -> tuple[User, str]:
    """A user and an API token for it (returned once; only its hash is stored)."""
    user = User(name=name, is_admin=is_admin)
    s.add(user)
    s.flush()
    _, token = create_token(s, user_id=user.id, name="first token", token=token)
    return user, token


def create_token(
    s: Session, *, user_id: int, name: str = "", expires_at: datetime | None = None, token: str | None = None,
) -> tuple[ApiToken, str]:
    """A new API token for the user: the row, and the token itself (returned once; only its hash is stored)."""
    token = token or f"nas_{secrets.token_urlsafe(32)}"
    row = ApiToken(user_id=user_id, token_hash=hash_token(token), name=name, hint=token[:8], expires_at=expires_at)
    s.add(row)
    s.flush()
    return row, token


def token_owner(s: Session, token: str) -> tuple[User, ApiToken] | None:
    """The user a live token belongs to (not revoked, not expired), with the token's row."""
    row = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)))
    if row is None or (row.expires_at is not None and aware(row.expires_at) <= utcnow()):
        return None
    user = s.get(User, row.user_id)
    return (user, row) if user is not None else None


def user_for_token(s: Session, token: str) -> User | None:
    found = token_owner(s, token)
    return found[0] if found else None


def list_tokens(s: Session, user_id: int) -> list[ApiToken]:
    """The user's tokens that are not revoked, newest first."""
    q = select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    return list(s.scalars(q.order_by(ApiToken.id.desc())).all())


def revoke_token(s: Session, *, user_id: int, token_id: int | None = None, token: str | None = None) -> bool:
    """Revoke one of the user's tokens, by id or by the token itself; False if there is no such live token."""
    q = update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    q = q.where(ApiToken.id == token_id) if token_id is not None else q.where(ApiToken.token_hash == hash_token(token or ""))
    return bool(s.execute(q.values(revoked_at=utcnow())).rowcount)  # type: ignore[attr-defined]


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def user_by_id(s: Session, user_id: int) -> User | None:
    return s.get(User, user_id)


def user_by_name(s: Session, name: str) -> User | None:
    return s.scalar(select(User).where(User.name == name))


def count_users(s: Session) -> int:
    return s.scalar(select(func.count()).select_from(User)) or 0


# ---- submissions -------------------------------------------------------------------------------
def submit_job(
    s: Session, *, owner_id: int, config: dict[str, Any], name: str = "", kind: str = "search", priority: int = 0,
    idempotency_key: str | None = None, max_attempts: int = 3,
) -> tuple[Job, bool]:
    """Queue a job; with an idempotency key already used by this owner, return that job instead."""
    if idempotency_key:
        existing = s.scalar(select(Job).where(Job.owner_id == owner_id, Job.idempotency_key == idempotency_key))
        if existing:
            return existing, False
    job = Job(id=str(uuid.uuid4()), owner_id=owner_id, config=config, name=name, kind=kind, priority=priority,
              idempotency_key=idempotency_key, max_attempts=max_attempts, status="queued")
    s.add(job)
    s.flush()
    add_event(s, job_id=job.id, attempt=0, kind="status", data={"status": "queued"})
    return job, True


def get_job(s: Session, job_id: str, owner: User | None = None, kind: str | None = None) -> Job | None:
    """A job by id or unique id prefix; with `owner`, only if that user owns it (admins see all); with
    `kind`, only of that kind. Someone else's jobs are not considered, so they cannot make a prefix ambiguous."""
    query = select(Job)
    if owner is not None and not owner.is_admin:
        query = query.where(Job.owner_id == owner.id)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return _by_prefix(s, query, Job.id, job_id, kind or "job")


def list_jobs(
    s: Session, *, owner: User, status: str | None = None, kind: str | None = None, limit: int = 50, offset: int = 0,
) -> tuple[list[Job], int]:
    q = select(Job)
    if not owner.is_admin:
        q = q.where(Job.owner_id == owner.id)
    if status:
        q = q.where(Job.status == status)
    if kind:
        q = q.where(Job.kind == kind)
    total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = s.scalars(q.order_by(Job.created_at.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


def request_cancel(s: Session, *, job: Job) -> None:
    """Queued jobs are cancelled at once; running ones are asked to stop (a search keeps what it found)."""
    if job.status == "queued":
        job.status, job.finished_at = "cancelled", utcnow()
        add_event(s, job_id=job.id, attempt=job.attempt, kind="status", data={"status": "cancelled"})
    elif job.status == "running":
        job.cancel_requested = True


def delete_job(s: Session, *, job: Job) -> None:
    """Delete a job with its candidates, events and artifacts (the foreign keys cascade)."""
    s.delete(job)


def ping(s: Session) -> None:
    """A round trip to the database (health checks)."""
    s.execute(text("SELECT 1"))


def count_by_status(s: Session) -> dict[str, int]:
    return {status: n for status, n in s.execute(select(Job.status, func.count()).group_by(Job.status))}


# ---- the queue -----------------------------------------------------------------------------------
def claim_next(db: Database, *, owner: str, lease_seconds: float, kinds: Sequence[str] | None = None) -> Job | None:
    """Atomically move the next queued job to running for `owner`, with a new attempt and lease.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED; SQLite: the transaction starts with BEGIN IMMEDIATE."""
    with db.session() as s:
        now = utcnow()
        q = select(Job).where(Job.status == "queued", or_(Job.not_before.is_(None), Job.not_before <= now))
        if kinds is not None:
            q = q.where(Job.kind.in_(kinds))
        q = q.order_by(Job.priority.desc(), Job.created_at).limit(1)
        if not is_sqlite(db.engine):
            q = q.with_for_update(skip_locked=True)
        job = s.scalar(q)
        if job is None:
            return None
        job.status, job.attempt, job.not_before, job.eta_at = "running", job.attempt + 1, None, None
        job.lease_owner, job.lease_expires_at = owner, now + timedelta(seconds=lease_seconds)
        job.started_at = job.started_at or now
        add_event(s, job_id=job.id, attempt=job.attempt, kind="status",
                  data={"status": "running", "attempt": job.attempt})
        return job


def _fenced(s: Session, job_id: str, attempt: int, **values: Any) -> None:
    """Update the job only if `attempt` still owns it (a no-op update just checks and locks the row)."""
    values = values or {"attempt": attempt}
    result = s.execute(
        update(Job).where(Job.id == job_id, Job.attempt == attempt, Job.status == "running").values(**values)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise StaleAttempt(f"job {job_id}: attempt {attempt} no longer owns it")


def hold(s: Session, *, job_id: str, attempt: int) -> None:
    """Lock the job's row for the rest of the transaction if `attempt` still owns it; else StaleAttempt."""
    _fenced(s, job_id, attempt)


def lease_states(db: Database, job_ids: Sequence[str]) -> dict[str, tuple[str | None, bool]]:
    """{job id: (lease owner, cancel requested)} of the running jobs among `job_ids`."""
    with db.session(readonly=True) as s:
        rows = s.execute(select(Job.id, Job.lease_owner, Job.cancel_requested)
                         .where(Job.id.in_(list(job_ids)), Job.status == "running"))
        return {job_id: (owner, bool(cancel)) for job_id, owner, cancel in rows}


def renew_lease(db: Database, *, job_id: str, attempt: int, owner: str | None, lease_seconds: float) -> bool:
    """Extend the lease (and name its owner, if given); returns whether cancellation was requested."""
    values: dict[str, Any] = {"lease_expires_at": utcnow() + timedelta(seconds=lease_seconds)}
    if owner:
        values["lease_owner"] = owner
    with db.session() as s:
        _fenced(s, job_id, attempt, **values)
        return bool(s.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def record_progress(
    db: Database, *, job_id: str, attempt: int, phase: str, step: int, total: int, progress: float,
    metrics: dict[str, float],
) -> None:
    """The job's phase and progress; a progress event carrying `eta_s` (the engine's own estimate of the seconds
    left) also sets when the job is expected to end."""
    values: dict[str, Any] = {"phase": phase, "step": step, "total": total, "progress": progress}
    if "eta_s" in metrics:
        values["eta_at"] = utcnow() + timedelta(seconds=float(metrics["eta_s"]))
    with db.session() as s:
        _fenced(s, job_id, attempt, **values)
        add_event(s, job_id=job_id, attempt=attempt, kind="progress",
                  data={"phase": phase, "step": step, "total": total, "progress": progress, "metrics": metrics})


def record_message(db: Database, *, job_id: str, attempt: int, text: str) -> None:
    with db.session() as s:
        _fenced(s, job_id, attempt)
        add_event(s, job_id=job_id, attempt=attempt, kind="message", data={"text": text})


def _metric_columns(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: metrics.get(k) for k in ("accuracy", "macs", "params", "latency_ms")}


def add_candidate(db: Database, *, job_id: str, attempt: int, candidate: Candidate) -> None:
    with db.session() as s:
        _fenced(s, job_id, attempt)
        row = s.scalar(select(CandidateRow).where(CandidateRow.search_id == job_id,
                                                  CandidateRow.arch_id == candidate.arch_id))
        if row is None:  # a resumed attempt re-reports the candidates it had already found
            s.add(CandidateRow(search_id=job_id, arch_id=candidate.arch_id, arch=candidate.arch,
                               metrics=candidate.metrics, feasible=candidate.feasible, generation=candidate.generation,
                               worker=candidate.worker, trial_id=candidate.trial_id,
                               **_metric_columns(candidate.metrics)))
            add_event(s, job_id=job_id, attempt=attempt, kind="candidate", data=candidate.model_dump(mode="json"))


def set_front(db: Database, *, job_id: str, attempt: int, front: list[Candidate]) -> None:
    """Mark exactly these candidates as the front (updating their metrics, e.g. test accuracy)."""
    with db.session() as s:
        _fenced(s, job_id, attempt)
        by_id = {c.arch_id: c for c in front}
        rows = s.scalars(select(CandidateRow).where(CandidateRow.search_id == job_id)).all()
        for row in rows:
            row.on_front = row.arch_id in by_id
            if row.on_front:
                row.metrics = by_id[row.arch_id].metrics
                row.trial_id = by_id[row.arch_id].trial_id or row.trial_id
                for k, v in _metric_columns(row.metrics).items():
                    setattr(row, k, v)
        best = max((c.metrics.get("accuracy", 0.0) for c in front), default=None)
        s.execute(update(Job).where(Job.id == job_id).values(best={"accuracy": best} if best is not None else {}))
        add_event(s, job_id=job_id, attempt=attempt, kind="front", data={"arch_ids": list(by_id)})


def finish(
    db: Database, *, job_id: str, attempt: int, status: str, error: str | None = None,
    error_kind: str | None = None, error_id: str | None = None, hypervolume: float | None = None,
) -> None:
    assert status in FINISHED
    with db.session() as s:
        values: dict[str, Any] = {"status": status, "error": error, "error_kind": error_kind, "error_id": error_id,
                                  "finished_at": utcnow(), "lease_owner": None, "lease_expires_at": None}
        if status == "succeeded":
            values |= {"progress": 1.0, "hypervolume": hypervolume, "phase": "done"}
        _fenced(s, job_id, attempt, **values)
        add_event(s, job_id=job_id, attempt=attempt, kind="status",
                  data={"status": status, "error": error, "error_kind": error_kind, "error_id": error_id})


def requeue(
    db: Database, *, job_id: str, attempt: int, reason: str, delay_seconds: float = 0.0, counted: bool = True,
) -> str:
    """Give a running attempt back to the queue (it resumes from its checkpoint), or fail the job once it has
    used max_attempts; returns the job's status.

    delay_seconds: claimed again no sooner (a back-off after a transient error: disk full, database busy).
    counted=False: the attempt is not held against the job (a clean shutdown); its number still grows on
    the next claim, so the old attempt's writes stay fenced."""
    with db.session() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.status != "running" or job.attempt != attempt:
            return job.status if job else "missing"
        if not counted:
            job.max_attempts += 1
        _give_back(s, job, reason)
        if job.status == "queued" and delay_seconds > 0:
            job.not_before = utcnow() + timedelta(seconds=delay_seconds)
        return job.status


def _give_back(s: Session, job: Job, reason: str) -> None:
    if job.cancel_requested:
        job.status, job.finished_at, job.error = "cancelled", utcnow(), None
    elif job.attempt >= job.max_attempts:
        job.status, job.finished_at = "failed", utcnow()
        job.error = f"gave up after {job.attempt} attempts; last: {reason}"
    else:
        job.status = "queued"
    job.lease_owner = job.lease_expires_at = None
    add_event(s, job_id=job.id, attempt=job.attempt, kind="status",
              data={"status": job.status, "reason": reason, "error": job.error})


def requeue_expired(db: Database, now: datetime | None = None) -> list[str]:
    """Every running job whose lease expired goes back to the queue (or fails at max attempts).

    The rows are locked as they are read (FOR UPDATE; SQLite: a write transaction from the start): on
    PostgreSQL, a row another transaction is changing (the owner renewing or finishing, another
    dispatcher) is read again once that commits, and left alone if it no longer matches."""
    now = now or utcnow()
    with db.session() as s:
        query = select(Job).where(Job.status == "running", Job.lease_expires_at < now).with_for_update()
        expired = s.scalars(query).all()
        for job in expired:
            _give_back(s, job, f"lease of attempt {job.attempt} expired (worker lost)")
        return [job.id for job in expired]


# ---- events and candidates --------------------------------------------------------------------------
def add_event(s: Session, *, job_id: str, attempt: int, kind: str, data: dict[str, Any]) -> None:
    s.add(Event(job_id=job_id, attempt=attempt, kind=kind, data=data))


def events_after(s: Session, job_id: str, after_id: int = 0, limit: int = 500) -> list[Event]:
    q = select(Event).where(Event.job_id == job_id, Event.id > after_id).order_by(Event.id).limit(limit)
    return list(s.scalars(q).all())


def candidates_page(
    s: Session, search_id: str, *, sort: str = "accuracy", descending: bool = True, limit: int = 50, offset: int = 0,
    front_only: bool = False,
) -> tuple[list[CandidateRow], int]:
    q = select(CandidateRow).where(CandidateRow.search_id == search_id)
    if front_only:
        q = q.where(CandidateRow.on_front.is_(True))
    total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
    column = getattr(CandidateRow, sort)
    order = column.desc() if descending else column.asc()
    rows = s.scalars(q.order_by(order.nulls_last(), CandidateRow.id).limit(limit).offset(offset)).all()
    return list(rows), total


def candidate(s: Session, search_id: str, arch_id: str) -> CandidateRow | None:
    """A candidate of the search by arch id or unique arch id prefix."""
    query = select(CandidateRow).where(CandidateRow.search_id == search_id)
    return _by_prefix(s, query, CandidateRow.arch_id, arch_id, "arch")


def count_candidates(s: Session) -> int:
    return s.scalar(select(func.count()).select_from(CandidateRow)) or 0


# ---- hardware: profiles and latency tables -------------------------------------------------------------
def profile_named(s: Session, *, name: str, spec: dict[str, Any]) -> HardwareProfileRow:
    """The hardware profile called `name`, created with `spec` the first time."""
    row = s.scalar(select(HardwareProfileRow).where(HardwareProfileRow.name == name))
    if row is None:
        row = HardwareProfileRow(name=name, spec=spec)
        s.add(row)
        s.flush()
    return row


def profile_by_name(s: Session, name: str) -> HardwareProfileRow | None:
    return s.scalar(select(HardwareProfileRow).where(HardwareProfileRow.name == name))


def profiles(s: Session) -> list[HardwareProfileRow]:
    return list(s.scalars(select(HardwareProfileRow).order_by(HardwareProfileRow.id)))


def newest_table(s: Session, profile_id: int, user: User) -> LatencyTableRow | None:
    """The newest table of a profile that `user` may see, their own first."""
    rows = [t for t, _ in s.execute(_visible_tables(user).where(LatencyTableRow.profile_id == profile_id)
                                    .order_by(LatencyTableRow.id.desc())).all()]
    own = [t for t in rows if t.owner_id == user.id]
    return (own or rows or [None])[0]


def table_measured(db: Database, *, path: str, spaces: str, entries: int, profile_spec: dict[str, Any]) -> None:
    """A search measured layers into the table at `path`: its spaces, entry count and bound machine change."""
    with db.session() as s:
        for row in s.scalars(select(LatencyTableRow).where(LatencyTableRow.path == path)):
            row.space, row.entries, row.profile_spec = spaces[:100], entries, profile_spec


def register_table(
    s: Session, *, owner: User, profile_name: str, profile_spec: dict[str, Any], space: str, entries: int,
    report: dict[str, Any], path: str = "",
) -> tuple[LatencyTableRow, HardwareProfileRow]:
    """Register a latency table (its file at `path`; set it later when the path derives from the id). It keeps
    its own profile spec; an admin's table is shared with every user, anyone else's is private to them."""
    profile = profile_named(s, name=profile_name, spec=profile_spec)
    row = LatencyTableRow(profile_id=profile.id, space=space, path=path, entries=entries, report=report,
                          owner_id=owner.id, shared=owner.is_admin, profile_spec=profile_spec)
    s.add(row)
    s.flush()
    return row, profile


def _visible_tables(user: User | None) -> Any:
    q = select(LatencyTableRow, HardwareProfileRow).join(HardwareProfileRow,
                                                         HardwareProfileRow.id == LatencyTableRow.profile_id)
    if user is not None and not user.is_admin:
        q = q.where(or_(LatencyTableRow.owner_id == user.id, LatencyTableRow.shared.is_(True)))
    return q


def latency_tables(s: Session, user: User | None = None) -> list[tuple[LatencyTableRow, HardwareProfileRow]]:
    """The tables `user` may see (their own and the shared ones; admins: all), oldest first."""
    return [(t, p) for t, p in s.execute(_visible_tables(user).order_by(LatencyTableRow.id)).all()]


def latency_table(s: Session, table_id: int, user: User | None = None) -> tuple[LatencyTableRow, HardwareProfileRow] | None:
    """A table `user` may see, with its profile; None otherwise."""
    found = s.execute(_visible_tables(user).where(LatencyTableRow.id == table_id)).first()
    return (found[0], found[1]) if found else None


def delete_table(s: Session, *, table: LatencyTableRow) -> None:
    s.delete(table)


# ---- artifacts ------------------------------------------------------------------------------------------
def add_artifact(db: Database, *, job_id: str, attempt: int, kind: str, path: str, size: int, sha256: str) -> None:
    """Record a file a job made (fenced: a stale attempt's file is not recorded)."""
    with db.session() as s:
        _fenced(s, job_id, attempt)
        s.add(Artifact(job_id=job_id, kind=kind, path=path, size=size, sha256=sha256))

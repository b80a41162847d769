"""Liveness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from api.deps import AdminUser, SessionDep
from api.errors import error_responses
from nas.store import repo
from nas.store.models import STATUSES

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(s: SessionDep) -> dict[str, str]:
    repo.ping(s)
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse, responses=error_responses(401, 403))
def metrics(s: SessionDep, admin: AdminUser) -> str:
    """Prometheus metrics of the whole service (queue counts of every user): for admins' tokens only."""
    counts = repo.count_by_status(s)
    lines = [
        "# HELP nas_queue_depth Jobs (searches, table builds) waiting in the queue.", "# TYPE nas_queue_depth gauge",
        f"nas_queue_depth {counts.get('queued', 0)}",
        "# HELP nas_running_searches Jobs (searches, table builds) running now.", "# TYPE nas_running_searches gauge",
        f"nas_running_searches {counts.get('running', 0)}",
        "# HELP nas_searches Jobs (searches, table builds) by status.", "# TYPE nas_searches gauge",
        *[f'nas_searches{{status="{st}"}} {counts.get(st, 0)}' for st in STATUSES],
        "# HELP nas_evaluations_total Candidate architectures evaluated.", "# TYPE nas_evaluations_total counter",
        f"nas_evaluations_total {repo.count_candidates(s)}",
    ]
    return "\n".join(lines) + "\n"

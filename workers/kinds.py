"""The registry of job kinds: what the dispatcher runs for each kind of queued job.

A new kind of job is one registration here (its Ray task and the resources a job of it needs) plus the
route that queues it; the queue, leases, cancel, events and `/api/v1/jobs/{id}` treat every kind alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nas.registry import Registry

# (database URL, the API's data dir, job id, attempt, lease seconds, torch threads, storage URL or None) -> the
# status the attempt ended in
RunJob = Callable[[str, str, str, int, float, int, str | None], str]


def no_extra_resources(config: dict[str, Any]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class JobKind:
    name: str
    run: RunJob
    resources: Callable[[dict[str, Any]], dict[str, Any]] = field(default=no_extra_resources)  # Ray task options


JOB_KINDS: Registry[JobKind] = Registry("job kind")


def register_job_kind(kind: JobKind) -> JobKind:
    JOB_KINDS.register(kind.name)(kind)
    return kind

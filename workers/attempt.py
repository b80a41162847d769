"""run_attempt: what every queued job (a search, a latency-table build) does around its own work.

It checks that the attempt still owns the job, starts the heartbeat reporter, runs the work and
records how it ended: succeeded, cancelled (keeping what was found), or failed with the reason.
A lost attempt ("stale") writes nothing more.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from collections.abc import Callable
from typing import Any

import torch

from nas.data import DataError
from nas.pipeline import RunDirError
from nas.progress import Cancelled
from nas.store import Database, StaleAttempt, repo
from search_spaces import ArchError, SpaceError
from workers.reporter import DatabaseReporter

log = logging.getLogger(__name__)

# errors of the user's input: retrying cannot help, so the job fails at once with the message
USER_ERRORS = (DataError, SpaceError, ArchError, RunDirError, ValueError)

# the work: (database, the job's stored config, reporter) -> extra fields for the succeeded row
Work = Callable[[Database, dict[str, Any], DatabaseReporter], dict[str, Any]]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_attempt(db_url: str, search_id: str, attempt: int, lease_seconds: float, threads: int, work: Work) -> str:
    """Run one attempt of a claimed job; returns the status it ended in."""
    torch.set_num_threads(threads)  # Ray sets OMP_NUM_THREADS=1 in workers
    db = Database(db_url)
    try:
        with db.session() as s:
            job = repo.get_search(s, search_id)
            if job is None or job.attempt != attempt or job.status != "running":
                return "stale"
            config = dict(job.config)
        reporter = DatabaseReporter(db, search_id=search_id, attempt=attempt, owner=worker_name(),
                                    lease_seconds=lease_seconds)
        try:
            return _finish(db, reporter, work, config)
        finally:
            reporter.close()
    except StaleAttempt:
        return "stale"
    finally:
        db.dispose()


def _finish(db: Database, reporter: DatabaseReporter, work: Work, config: dict[str, Any]) -> str:
    ids: dict[str, Any] = {"search_id": reporter.search_id, "attempt": reporter.attempt}
    if reporter.attempt > 1:
        reporter.message(f"attempt {reporter.attempt}: resuming from the last checkpoint")
    try:
        extra = work(db, config, reporter)
    except Cancelled:
        if reporter.lost.is_set():
            return "stale"  # another attempt owns the job now
        repo.finish(db, status="cancelled", **ids)  # what was found so far stays in the database
        return "cancelled"
    except USER_ERRORS as err:
        repo.finish(db, status="failed", error=str(err), **ids)
        return "failed"
    except Exception as err:  # a bug: record it with its traceback rather than retrying forever
        log.exception("job %s failed", reporter.search_id)
        reporter.message(traceback.format_exc(limit=8))
        repo.finish(db, status="failed", error=f"{type(err).__name__}: {err}", **ids)
        return "failed"
    repo.finish(db, status="succeeded", **ids, **extra)
    return "succeeded"

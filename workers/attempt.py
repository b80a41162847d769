"""run_attempt: what every queued job (a search, a latency-table build) does around its own work.

It checks that the attempt still owns the job, starts the heartbeat reporter, runs the work and
records how it ended: succeeded, cancelled (keeping what was found), or failed. A failure is the
user's (a UserError: its message says what to fix) or internal (anything else: a bug, whose traceback
is kept in the job's folder under an error id that the API and dashboard show). A lost attempt
("stale") writes nothing more.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from sqlalchemy.exc import OperationalError

from nas.files import write_text_atomic
from nas.progress import Cancelled
from nas.rundir import job_workdir, traceback_file
from nas.store import Database, StaleAttempt, repo
from search_spaces import UserError
from workers.reporter import DatabaseReporter

log = logging.getLogger(__name__)

# errors of the machine rather than the job: a later attempt (after a back-off) may well succeed
TRANSIENT = (OSError, OperationalError)
RETRY_DELAY_SECONDS = 10.0  # doubled at each attempt

# the work: (database, the job's stored config, reporter) -> extra fields for the succeeded row
Work = Callable[[Database, dict[str, Any], DatabaseReporter], dict[str, Any]]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_attempt(db_url: str, data_dir: str, job_id: str, attempt: int, lease_seconds: float, threads: int,
                work: Work) -> str:
    """Run one attempt of a claimed job; returns the status it ended in."""
    torch.set_num_threads(threads)  # Ray sets OMP_NUM_THREADS=1 in workers
    db = Database(db_url)
    try:
        with db.session() as s:
            job = repo.get_job(s, job_id)
            if job is None or job.attempt != attempt or job.status != "running":
                return "stale"
            config = dict(job.config)
        reporter = DatabaseReporter(db, job_id=job_id, attempt=attempt, owner=worker_name(),
                                    lease_seconds=lease_seconds)
        try:
            return _finish(db, reporter, work, config, job_workdir(data_dir, job_id))
        finally:
            reporter.close()
    except StaleAttempt:
        return "stale"
    finally:
        db.dispose()


def _finish(db: Database, reporter: DatabaseReporter, work: Work, config: dict[str, Any], folder: Path) -> str:
    ids: dict[str, Any] = {"job_id": reporter.job_id, "attempt": reporter.attempt}
    if reporter.attempt > 1:
        reporter.message(f"attempt {reporter.attempt}: resuming from the last checkpoint")
    try:
        extra = work(db, config, reporter)
    except Cancelled:
        if reporter.lost.is_set():
            return "stale"  # another attempt owns the job now
        repo.finish(db, status="cancelled", **ids)  # what was found so far stays in the database
        return "cancelled"
    except TRANSIENT as err:  # the machine's trouble, not the job's: back to the queue, later
        if reporter.lost.is_set():
            return "stale"
        delay = RETRY_DELAY_SECONDS * 2 ** (reporter.attempt - 1)
        reason = f"transient error, retrying in {delay:g} s: {type(err).__name__}: {err}"
        log.warning("job %s: %s", reporter.job_id, reason)
        return repo.requeue(db, reason=reason, delay_seconds=delay, **ids)
    except UserError as err:  # retrying cannot help: the job fails at once with the message
        repo.finish(db, status="failed", error=str(err), error_kind="user", **ids)
        return "failed"
    except Exception as err:  # a bug: keep its traceback rather than retrying forever
        error_id = uuid.uuid4().hex[:12]
        log.exception("job %s failed with internal error %s", reporter.job_id, error_id)
        path = traceback_file(folder, reporter.attempt)
        write_text_atomic(path, f"error id {error_id}\n{traceback.format_exc()}")
        repo.finish(db, status="failed", error=f"internal error {error_id}: {type(err).__name__}: {err} "
                    f"(traceback: {path})", error_kind="internal", error_id=error_id, **ids)
        return "failed"
    repo.finish(db, status="succeeded", **ids, **extra)
    return "succeeded"

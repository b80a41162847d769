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
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from sqlalchemy.exc import OperationalError

from nas.files import write_text_atomic
from nas.progress import Cancelled
from nas.rundir import job_workdir, traceback_file
from nas.storage import ArtifactStore
from nas.store import Database, StaleAttempt, repo
from search_spaces import UserError
from workers.reporter import DatabaseReporter

log = logging.getLogger(__name__)

# errors of the machine rather than the job: a later attempt (after a back-off) may well succeed
TRANSIENT = (OSError, OperationalError)
RETRY_DELAY_SECONDS = 10.0  # doubled at each attempt

PUSH_EVERY_SECONDS = 15.0  # a remote store gets the run folder's new files this often (and at the end)


@dataclass(frozen=True)
class JobFiles:
    """A job's files. Every machine keeps its copy of the data dir at the same path (NAS_DATA_DIR), so the
    paths in job configs hold everywhere; with a storage URL, `store` fetches and publishes them."""

    store: ArtifactStore
    job_id: str

    @property
    def workdir(self) -> Path:
        return job_workdir(self.store.root, self.job_id)

    def here(self, path: str, refresh: bool = False) -> Path:
        """A file named in a job config, on this machine (fetched from the store if need be)."""
        return self.store.pull(path, refresh)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# the work: (database, the job's stored config, reporter, its files) -> extra fields for the succeeded row
Work = Callable[[Database, dict[str, Any], DatabaseReporter, JobFiles], dict[str, Any]]


class _Mirror:
    """Pushes the run folder's new files to a remote store every PUSH_EVERY_SECONDS and once at the end, so a
    lost worker loses at most that much (a later attempt, anywhere, pulls the folder and resumes)."""

    def __init__(self, files: JobFiles):
        self.files, self._stop = files, threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mirror", daemon=True)

    def __enter__(self) -> _Mirror:
        self.files.store.pull_tree(self.files.workdir)
        if self.files.store.remote:
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(PUSH_EVERY_SECONDS):
            try:
                self.files.store.push_tree(self.files.workdir)
            except Exception:  # the store's hiccup: the next round (or the final push) retries
                log.exception("pushing %s to the store failed", self.files.workdir)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        self.files.store.push_tree(self.files.workdir)


def run_attempt(db_url: str, data_dir: str, job_id: str, attempt: int, lease_seconds: float, threads: int,
                work: Work, storage_url: str | None = None) -> str:
    """Run one attempt of a claimed job; returns the status it ended in."""
    torch.set_num_threads(threads)  # Ray sets OMP_NUM_THREADS=1 in workers
    db = Database(db_url)
    try:
        with db.session(readonly=True) as s:
            job = repo.get_job(s, job_id)
            if job is None or job.attempt != attempt or job.status != "running":
                return "stale"
            config = dict(job.config)
        reporter = DatabaseReporter(db, job_id=job_id, attempt=attempt, owner=worker_name(),
                                    lease_seconds=lease_seconds)
        files = JobFiles(ArtifactStore(storage_url, Path(data_dir)), job_id)
        try:
            with _Mirror(files):
                record = _finish(db, reporter, work, config, files)
            # the status is written after the mirror's last push: a job seen as ended has its files in the store
            return record()
        finally:
            reporter.close()
    except StaleAttempt:
        return "stale"
    finally:
        db.dispose()


def _finish(db: Database, reporter: DatabaseReporter, work: Work, config: dict[str, Any],
            files: JobFiles) -> Callable[[], str]:
    """Run the work; returns how to record its end (called once the run folder is in the store)."""
    ids: dict[str, Any] = {"job_id": reporter.job_id, "attempt": reporter.attempt}
    folder = files.workdir
    if reporter.attempt > 1:
        reporter.message(f"attempt {reporter.attempt}: resuming from the last checkpoint")
    try:
        extra = work(db, config, reporter, files)
    except Cancelled:
        if reporter.lost.is_set():
            return lambda: "stale"  # another attempt owns the job now
        return _ended(db, ids, "cancelled")  # what was found so far stays in the database
    except TRANSIENT as err:  # the machine's trouble, not the job's: back to the queue, later
        if reporter.lost.is_set():
            return lambda: "stale"
        delay = RETRY_DELAY_SECONDS * 2 ** (reporter.attempt - 1)
        reason = f"transient error, retrying in {delay:g} s: {type(err).__name__}: {err}"
        log.warning("job %s: %s", reporter.job_id, reason)
        return lambda: repo.requeue(db, reason=reason, delay_seconds=delay, **ids)
    except UserError as err:  # retrying cannot help: the job fails at once with the message
        return _ended(db, ids, "failed", error=str(err), error_kind="user")
    except Exception as err:  # a bug: keep its traceback rather than retrying forever
        error_id = uuid.uuid4().hex[:12]
        log.exception("job %s failed with internal error %s", reporter.job_id, error_id)
        path = traceback_file(folder, reporter.attempt)
        write_text_atomic(path, f"error id {error_id}\n{traceback.format_exc()}")
        return _ended(db, ids, "failed", error=f"internal error {error_id}: {type(err).__name__}: {err} "
                      f"(traceback: {path})", error_kind="internal", error_id=error_id)
    return _ended(db, ids, "succeeded", **extra)


def _ended(db: Database, ids: dict[str, Any], status: str, **fields: Any) -> Callable[[], str]:
    def record() -> str:
        repo.finish(db, status=status, **ids, **fields)
        return status
    return record

"""run_search_job: what a Ray worker runs for one claimed attempt of a search."""

from __future__ import annotations

import logging
import os
import socket
import traceback
from pathlib import Path
from typing import Any

import torch

from nas.data import DataError
from nas.pipeline import RESULT, RunDirError, run_search
from nas.progress import Cancelled
from nas.schemas import SearchConfig
from nas.store import Database, StaleAttempt, repo
from search_spaces import ArchError, SpaceError
from workers.reporter import DatabaseReporter

log = logging.getLogger(__name__)

# errors of the user's input: retrying cannot help, so the search fails at once with the message
USER_ERRORS = (DataError, SpaceError, ArchError, RunDirError, ValueError)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def search_workdir(data_dir: str | Path, search_id: str) -> Path:
    return Path(data_dir) / "searches" / search_id


def run_search_job(db_url: str, data_dir: str, search_id: str, attempt: int, lease_seconds: float, threads: int) -> str:
    """Run (or resume) one search attempt; returns the status it ended in."""
    torch.set_num_threads(threads)  # Ray sets OMP_NUM_THREADS=1 in workers
    db = Database(db_url)
    try:
        with db.session() as s:
            search = repo.get_search(s, search_id)
            if search is None or search.attempt != attempt or search.status != "running":
                return "stale"
            config = SearchConfig.model_validate(search.config)
        reporter = DatabaseReporter(db, search_id=search_id, attempt=attempt, owner=worker_name(),
                                    lease_seconds=lease_seconds)
        try:
            return _run(db, config, reporter, search_workdir(data_dir, search_id))
        finally:
            reporter.close()
    except StaleAttempt:
        return "stale"
    finally:
        db.dispose()


def _run(db: Database, config: SearchConfig, reporter: DatabaseReporter, workdir: Path) -> str:
    ids: dict[str, Any] = {"search_id": reporter.search_id, "attempt": reporter.attempt}
    if reporter.attempt > 1:
        reporter.message(f"attempt {reporter.attempt}: resuming from the last checkpoint")
    try:
        result = run_search(config, reporter, workdir)
    except Cancelled:
        if reporter.lost.is_set():
            return "stale"  # another attempt owns the search now
        repo.finish(db, status="cancelled", **ids)  # candidates found so far stay in the database
        return "cancelled"
    except USER_ERRORS as err:
        repo.finish(db, status="failed", error=str(err), **ids)
        return "failed"
    except Exception as err:  # a bug: record it with its traceback rather than retrying forever
        log.exception("search %s failed", reporter.search_id)
        reporter.message(traceback.format_exc(limit=8))
        repo.finish(db, status="failed", error=f"{type(err).__name__}: {err}", **ids)
        return "failed"
    repo.set_front(db, front=result.front, **ids)
    _record_artifact(db, reporter.search_id, workdir / RESULT)
    repo.finish(db, status="succeeded", hypervolume=result.hypervolume, **ids)
    return "succeeded"


def _record_artifact(db: Database, search_id: str, path: Path) -> None:
    import hashlib

    from nas.store.models import Artifact

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with db.session() as s:
        s.add(Artifact(search_id=search_id, kind="result", path=str(path), size=path.stat().st_size, sha256=digest))

"""The dispatcher with a real local Ray: a job that waits for resources the cluster never frees fails after
NAS_START_TIMEOUT (freeing its slot), and a cancel removes a job whose task has not started."""

import os
import time

import pytest

from nas.settings import Settings
from nas.store import Database, migrate, repo
from workers.dispatcher import Dispatcher
from workers.kinds import JOB_KINDS, JobKind, register_job_kind


def never_runs(*args) -> str:  # its task waits for a resource no node has
    raise AssertionError("a task that needs a unicorn ran")


@pytest.fixture
def dispatcher(tmp_path):
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    register_job_kind(JobKind("unicorn", never_runs, lambda config: {"resources": {"unicorn": 1}}))
    settings = Settings(data_dir=tmp_path, start_timeout=4, poll_seconds=0.2, max_concurrent=1)
    db = Database(settings.db_url)
    migrate(db.engine)
    with db.session() as s:
        user, _ = repo.create_user(s, name="u")
    d = Dispatcher(db, settings)
    d.start()
    yield d, db, user.id
    d.stop()
    JOB_KINDS.unregister("unicorn")
    db.dispose()


def _wait(db, job_id, statuses, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as s:
            job = repo.get_job(s, job_id)
            if job.status in statuses:
                return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stayed {job.status}")


def test_unstartable_jobs_time_out_and_pending_ones_cancel(dispatcher):
    d, db, owner = dispatcher
    with db.session() as s:
        first, _ = repo.submit_job(s, owner_id=owner, config={}, kind="unicorn")
        second, _ = repo.submit_job(s, owner_id=owner, config={}, kind="unicorn")
    job = _wait(db, first.id, ("failed",))
    assert "did not start within 4 s" in job.error and job.error_kind == "user"
    _wait(db, second.id, ("running",))  # the slot was freed for the next job
    with db.session() as s:
        repo.request_cancel(s, job=repo.get_job(s, second.id))
    started = time.monotonic()
    assert _wait(db, second.id, ("cancelled", "failed"), timeout=30).status == "cancelled"
    assert time.monotonic() - started < 3  # not after the start timeout: the cancel reached the pending task

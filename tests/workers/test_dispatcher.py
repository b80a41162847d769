"""The dispatcher with a real local Ray: a job that waits for resources the cluster never frees fails after
NAS_START_TIMEOUT (freeing its slot), a cancel removes a job whose task has not started, and a task whose
heartbeat stopped loses its job and its slot."""

import os
import time

import pytest

from nas.settings import Settings
from nas.store import Database, migrate, repo
from workers.dispatcher import Dispatcher
from workers.kinds import JOB_KINDS, JobKind, register_job_kind


def never_runs(*args) -> str:  # its task waits for a resource no node has
    raise AssertionError("a task that needs a unicorn ran")


def goes_silent(db_url: str, data_dir: str, job_id: str, attempt: int, *args) -> str:
    """Takes the job's lease under its own name once, then hangs without a heartbeat."""
    repo.renew_lease(Database(db_url), job_id=job_id, attempt=attempt, owner="hung-worker", lease_seconds=2)
    time.sleep(600)
    return "succeeded"


@pytest.fixture
def dispatcher(tmp_path, request):
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    register_job_kind(JobKind("unicorn", never_runs, lambda config: {"resources": {"unicorn": 1}}))
    register_job_kind(JobKind("silent", goes_silent, lambda config: {}))
    settings = Settings(data_dir=tmp_path, poll_seconds=0.2, max_concurrent=1, lease_seconds=6,
                        start_timeout=getattr(request, "param", 4))
    db = Database(settings.db_url)
    migrate(db.engine)
    with db.session() as s:
        user, _ = repo.create_user(s, name="u")
    d = Dispatcher(db, settings)
    d.start()
    yield d, db, user.id
    d.stop()
    JOB_KINDS.unregister("unicorn")
    JOB_KINDS.unregister("silent")
    db.dispose()


def _wait(db, job_id, statuses, timeout=120, attempt=1):
    """The job once it is in one of `statuses` on attempt `attempt` or later."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as s:
            job = repo.get_job(s, job_id)
            if job.status in statuses and job.attempt >= attempt:
                return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stayed {job.status} on attempt {job.attempt} ({job.error})")


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


@pytest.mark.parametrize("dispatcher", [120], indirect=True)  # start timeout: a worker process may take a while
def test_a_worker_whose_heartbeat_stops_loses_its_job_and_its_slot(dispatcher):
    d, db, owner = dispatcher
    with db.session() as s:
        job, _ = repo.submit_job(s, owner_id=owner, config={}, kind="silent")
    # the dispatcher does not keep a started task's lease alive: it expires, the job goes back to the queue, the
    # hung task is stopped, and the freed slot (the only one) runs the job's next attempt
    _wait(db, job.id, ("running",), attempt=2)
    with db.session() as s:
        reasons = [e.data.get("reason") for e in repo.events_after(s, job.id) if e.kind == "status"]
    assert "lease of attempt 1 expired (worker lost)" in reasons, reasons

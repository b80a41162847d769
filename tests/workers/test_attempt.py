"""How an attempt ends: a user's error fails the job with its message; a bug fails it as an internal error
whose traceback is kept in the job's folder under the error id the API shows."""

from datetime import timedelta
from pathlib import Path

import pytest

from nas.rundir import job_workdir, traceback_file
from nas.store import Database, migrate, repo
from nas.store.models import utcnow
from search_spaces import SpaceError
from workers.attempt import run_attempt


@pytest.fixture
def claimed(database_url):
    db = Database(database_url)
    migrate(db.engine)
    with db.session() as s:
        user, _ = repo.create_user(s, name="u")
        job, _ = repo.submit_job(s, owner_id=user.id, config={"space": "hybrid-tiny"})
    job = repo.claim_next(db, owner="test", lease_seconds=30)
    yield db, job
    db.dispose()


def _run(db, job, data_dir: Path, work) -> str:
    return run_attempt(db.url, str(data_dir), job.id, job.attempt, 30.0, 1, work)


def test_a_bug_is_an_internal_error_with_a_traceback_file(claimed, tmp_path):
    db, job = claimed

    def buggy(db, config, reporter, files):
        return {"ratio": 1 / 0}

    assert _run(db, job, tmp_path, buggy) == "failed"
    with db.session() as s:
        row = repo.get_job(s, job.id)
        assert row.error_kind == "internal" and row.error_id and row.error_id in row.error
        assert "ZeroDivisionError" in row.error
    text = traceback_file(job_workdir(tmp_path, job.id), job.attempt).read_text()
    assert row.error_id in text and "1 / 0" in text


def test_a_user_error_fails_with_its_message_and_no_traceback(claimed, tmp_path):
    db, job = claimed

    def bad_input(db, config, reporter, files):
        raise SpaceError("unknown search space 'nope'")

    assert _run(db, job, tmp_path, bad_input) == "failed"
    with db.session() as s:
        row = repo.get_job(s, job.id)
        assert (row.error_kind, row.error_id, row.error) == ("user", None, "unknown search space 'nope'")
    assert not (job_workdir(tmp_path, job.id) / "errors").exists()


def test_a_transient_error_retries_later_instead_of_failing(claimed, tmp_path):
    db, job = claimed

    def disk_full(db, config, reporter, files):
        raise OSError(28, "No space left on device")

    assert _run(db, job, tmp_path, disk_full) == "queued"
    with db.session() as s:
        row = repo.get_job(s, job.id)
        assert row.status == "queued" and row.not_before is not None and row.error is None
    assert repo.claim_next(db, owner="test", lease_seconds=30) is None  # not before the back-off has passed
    with db.session() as s:
        repo.get_job(s, job.id).not_before = utcnow() - timedelta(seconds=1)
    again = repo.claim_next(db, owner="test", lease_seconds=30)
    assert again is not None and again.id == job.id and again.attempt == 2


def test_an_attempt_that_lost_its_job_writes_no_checkpoint(claimed, tmp_path):
    """A stale attempt still training when another owns the job must not replace the owner's files."""
    from nas.data import load_dataset
    from nas.progress import Cancelled
    from nas.schemas import DatasetConfig, TrainConfig
    from nas.train import CHECKPOINT, train_supernet
    from search_spaces import HybridSupernet, get_space
    from workers.reporter import DatabaseReporter

    db, job = claimed
    stale = DatabaseReporter(db, job_id=job.id, attempt=job.attempt, owner="old", lease_seconds=30)
    try:
        assert repo.requeue_expired(db, now=utcnow() + timedelta(seconds=60)) == [job.id]
        assert repo.claim_next(db, owner="new", lease_seconds=30).attempt == job.attempt + 1
        data = load_dataset(DatasetConfig(name="digits")).normalized()
        cfg = TrainConfig(steps=3, batch_size=8, checkpoint_every=1, warmup_steps=1)
        with pytest.raises(Cancelled):
            train_supernet(HybridSupernet.from_spec(get_space("hybrid-tiny")), data, cfg, tmp_path, stale)
        assert not (tmp_path / CHECKPOINT).exists() and not list(tmp_path.glob(".*.tmp"))
        assert stale.should_stop()
    finally:
        stale.close()


def test_progress_is_throttled_within_a_phase_but_a_new_phase_is_written_at_once(claimed):
    """The dashboard shows the phase a search is in even when it began a split second after the last write."""
    from workers.reporter import DatabaseReporter

    db, job = claimed
    reporter = DatabaseReporter(db, job_id=job.id, attempt=job.attempt, owner="test", lease_seconds=30,
                                min_interval=3600)

    def phase() -> tuple[str, int]:
        with db.session() as s:
            row = repo.get_job(s, job.id)
            return row.phase, row.step

    try:
        reporter.progress("search", 1, 6)
        reporter.progress("search", 2, 6)  # within the interval: not written
        assert phase() == ("search", 1)
        reporter.phase("finetune", 2)
        assert phase() == ("finetune", 0)
    finally:
        reporter.close()

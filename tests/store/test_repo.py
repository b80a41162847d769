import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import inspect, text, update

from nas.schemas import Candidate
from nas.store import Database, StaleAttempt, migrate, repo
from nas.store.models import Job, utcnow


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    migrate(database.engine)
    yield database
    database.dispose()


def make_user(db, name="alice", admin=False):
    with db.session() as s:
        user, token = repo.create_user(s, name=name, is_admin=admin)
    return user, token


def submit(db, user, **kw):
    with db.session() as s:
        search, _ = repo.submit_job(s, owner_id=user.id, config={"space": "hybrid-tiny"}, **kw)
    return search


def test_migrations_use_their_own_version_table(db):
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "api_tokens", "jobs", "candidates", "events", "artifacts", "latency_tables"} <= tables
    assert "nas_alembic_version" in tables and "alembic_version" not in tables and "searches" not in tables
    migrate(db.engine)  # idempotent


def test_the_jobs_migration_keeps_existing_searches(database_url):
    """A database made before jobs had their own table (revision 0002) upgrades with every row kept."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from nas.store.db import MIGRATIONS

    old = Database(database_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with old.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    with old.engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, name, is_admin, created_at) VALUES (1, 'u', false, CURRENT_TIMESTAMP)"))
        conn.execute(text(
            "INSERT INTO searches (id, owner_id, name, kind, config, status, phase, step, total, progress, priority, "
            "attempt, max_attempts, cancel_requested, best, created_at) VALUES ('s1', 1, 'old', 'search', '{}', "
            "'succeeded', '', 0, 0, 1.0, 0, 1, 3, false, '{}', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO events (search_id, attempt, kind, data, created_at) "
                          "VALUES ('s1', 1, 'status', '{\"status\": \"succeeded\"}', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO candidates (search_id, arch_id, arch, metrics, feasible, on_front, generation, "
                          "created_at) VALUES ('s1', 'a1', '{}', '{}', true, true, 0, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO artifacts (search_id, kind, path, size, sha256, created_at) "
                          "VALUES ('s1', 'result', '/r.json', 1, 'x', CURRENT_TIMESTAMP)"))
    old.dispose()
    db = Database(database_url)
    migrate(db.engine)
    with db.session() as s:
        job = repo.get_job(s, "s1", kind="search")
        assert job is not None and job.name == "old" and job.status == "succeeded"
        assert [e.data["status"] for e in repo.events_after(s, "s1")] == ["succeeded"]
        assert repo.candidate(s, "s1", "a1").on_front
        assert s.scalar(repo.select(repo.Artifact.path).where(repo.Artifact.job_id == "s1")) == "/r.json"
        s.delete(job)  # foreign keys follow the renamed table: the job's rows go with it
    with db.session() as s:
        assert repo.candidate(s, "s1", "a1") is None and repo.events_after(s, "s1") == []
    db.dispose()


def test_tokens_are_hashed_and_resolve_to_their_user(db):
    user, token = make_user(db)
    with db.session() as s:
        assert repo.user_for_token(s, token).id == user.id
        assert repo.user_for_token(s, token + "x") is None
        stored = s.execute(repo.select(repo.ApiToken.token_hash)).scalars().all()
    assert token not in stored and repo.hash_token(token) in stored


def test_claims_are_atomic_under_concurrency(db):
    user, _ = make_user(db)
    ids = {submit(db, user).id for _ in range(12)}
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(n):
        while (search := repo.claim_next(db, owner=f"w{n}", lease_seconds=30)) is not None:
            with lock:
                claimed.append(search.id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)  # each exactly once


def test_queue_order_is_priority_then_age(db):
    user, _ = make_user(db)
    first, urgent = submit(db, user), submit(db, user, priority=5)
    second = submit(db, user)
    order = [repo.claim_next(db, owner="w", lease_seconds=30).id for _ in range(3)]
    assert order == [urgent.id, first.id, second.id]


def test_stale_attempt_writes_are_rejected(db):
    user, _ = make_user(db)
    submit(db, user)
    first = repo.claim_next(db, owner="w1", lease_seconds=30)
    assert repo.requeue_expired(db, now=utcnow() + timedelta(seconds=60)) == [first.id]
    second = repo.claim_next(db, owner="w2", lease_seconds=30)
    assert second.id == first.id and second.attempt == 2
    with pytest.raises(StaleAttempt):
        repo.record_progress(db, job_id=first.id, attempt=1, phase="train", step=1, total=2, progress=0.1, metrics={})
    with pytest.raises(StaleAttempt):
        repo.finish(db, job_id=first.id, attempt=1, status="succeeded")
    repo.record_progress(db, job_id=first.id, attempt=2, phase="train", step=1, total=2, progress=0.1, metrics={})
    repo.finish(db, job_id=first.id, attempt=2, status="succeeded", hypervolume=0.5)
    with db.session() as s:
        assert repo.get_job(s, first.id).status == "succeeded"


def test_a_transaction_that_reads_then_writes_survives_a_write_committed_in_between(db):
    """A session may write unless marked read-only: on SQLite it holds the write lock from its start, so another
    writer waits for it, where a deferred transaction's later write would fail at once with "database is
    locked". A read-only session reads beside a writer."""
    user, _ = make_user(db)
    job = submit(db, user)

    def other_write() -> None:
        with db.session() as w:
            w.execute(update(Job).where(Job.id == job.id).values(progress=0.5))

    writer = threading.Thread(target=other_write)
    with db.session() as s:
        assert repo.get_job(s, job.id).phase != "train"
        writer.start()
        writer.join(timeout=2)  # commits at once unless this transaction holds the write lock
        s.execute(update(Job).where(Job.id == job.id).values(phase="train"))
        with db.session(readonly=True) as reader:  # beside the write lock this transaction holds
            assert repo.get_job(reader, job.id).status == "queued"
    writer.join(timeout=60)
    assert not writer.is_alive()
    with db.session(readonly=True) as s:
        row = repo.get_job(s, job.id)
        assert (row.phase, row.progress) == ("train", 0.5)


def _wait_for_a_lock_wait(db, deadline: float = 30.0) -> None:
    """PostgreSQL: until some session waits on a row lock (SQLite shows no such thing: return at once)."""
    if db.url.startswith("sqlite"):
        return
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with db.engine.connect() as conn:
            if conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")).scalar():
                return
        time.sleep(0.05)
    raise AssertionError("the requeue never waited for the owner's row lock")


def test_requeueing_an_expired_lease_never_undoes_a_concurrent_finish(db):
    """The owner finishes just as a dispatcher finds its lease expired: the finish stands."""
    user, _ = make_user(db)
    submit(db, user)
    job = repo.claim_next(db, owner="w", lease_seconds=30)
    requeued: list[list[str]] = []
    with db.session() as owner:  # the owner's finish, in flight: row changed, not committed
        owner.execute(update(Job).where(Job.id == job.id).values(status="succeeded"))
        dispatcher = threading.Thread(
            target=lambda: requeued.append(repo.requeue_expired(db, now=utcnow() + timedelta(seconds=60))))
        dispatcher.start()
        _wait_for_a_lock_wait(db)
    dispatcher.join(timeout=60)
    assert requeued == [[]]
    with db.session() as s:
        assert repo.get_job(s, job.id).status == "succeeded"


def test_expired_leases_fail_after_max_attempts(db):
    user, _ = make_user(db)
    search = submit(db, user, max_attempts=2)
    for _ in range(2):
        assert repo.claim_next(db, owner="w", lease_seconds=1).id == search.id
        repo.requeue_expired(db, now=utcnow() + timedelta(seconds=5))
    with db.session() as s:
        row = repo.get_job(s, search.id)
        assert row.status == "failed" and "after 2 attempts" in row.error and "lease" in row.error


def test_idempotency_key_returns_the_same_search(db):
    user, _ = make_user(db)
    other, _ = make_user(db, "bob")
    with db.session() as s:
        a, created_a = repo.submit_job(s, owner_id=user.id, config={}, idempotency_key="k1")
        b, created_b = repo.submit_job(s, owner_id=user.id, config={}, idempotency_key="k1")
        c, _ = repo.submit_job(s, owner_id=other.id, config={}, idempotency_key="k1")
    assert created_a and not created_b and a.id == b.id and c.id != a.id


def test_cancel_and_owner_isolation(db):
    alice, _ = make_user(db)
    bob, _ = make_user(db, "bob")
    admin, _ = make_user(db, "root", admin=True)
    queued, running = submit(db, alice), submit(db, alice)
    repo.claim_next(db, owner="w", lease_seconds=30)  # claims `queued` (older)
    with db.session() as s:
        assert repo.get_job(s, queued.id, owner=bob) is None
        assert repo.get_job(s, queued.id, owner=admin) is not None
        repo.request_cancel(s, job=repo.get_job(s, running.id, owner=alice))
        repo.request_cancel(s, job=repo.get_job(s, queued.id, owner=alice))
    with db.session() as s:
        assert repo.get_job(s, running.id).status == "cancelled"
        assert repo.get_job(s, queued.id).cancel_requested
    assert repo.renew_lease(db, job_id=queued.id, attempt=1, owner="w", lease_seconds=30) is True


def test_candidates_front_and_pages(db):
    user, _ = make_user(db)
    search = submit(db, user)
    repo.claim_next(db, owner="w", lease_seconds=30)
    cands = [Candidate(arch_id=f"{i:064d}", arch={}, metrics={"accuracy": i / 10, "macs": 100 - i}) for i in range(7)]
    for c in cands + cands[:2]:  # re-reported candidates are not duplicated
        repo.add_candidate(db, job_id=search.id, attempt=1, candidate=c)
    repo.set_front(db, job_id=search.id, attempt=1, front=[cands[6].model_copy(update={"metrics": {
        "accuracy": 0.6, "macs": 94, "test_accuracy": 0.55}})])
    with db.session() as s:
        rows, total = repo.candidates_page(s, search.id, sort="macs", descending=False, limit=3)
        assert total == 7 and [r.macs for r in rows] == [94, 95, 96]
        front, n = repo.candidates_page(s, search.id, front_only=True)
        assert n == 1 and front[0].metrics["test_accuracy"] == 0.55
        kinds = [e.kind for e in repo.events_after(s, search.id)]
        assert kinds.count("candidate") == 7 and kinds[-1] == "front"
        # ids: a unique prefix finds its row, a shared one is refused, a short one is no prefix
        assert repo.candidate(s, search.id, "0" * 63 + "6").arch_id == cands[6].arch_id
        with pytest.raises(repo.AmbiguousId, match="matches several"):
            repo.candidate(s, search.id, "0" * 63)
        assert repo.candidate(s, search.id, "00000") is None
    repo.add_candidate(db, job_id=search.id, attempt=1, candidate=Candidate(arch_id="abcdef" + "1" * 58, arch={},
                                                                             metrics={"accuracy": 0.1}))
    with db.session() as s:
        assert repo.candidate(s, search.id, "abcdef1").arch_id == "abcdef" + "1" * 58
        assert repo.get_job(s, search.id[:8]).id == search.id



def test_the_engines_eta_is_kept_until_the_next_attempt(db):
    from api.models import eta

    user, _ = make_user(db)
    submit(db, user)
    job = repo.claim_next(db, owner="w1", lease_seconds=30)
    repo.record_progress(db, job_id=job.id, attempt=1, phase="train", step=1, total=9, progress=0.1,
                         metrics={"eta_s": 600.0})
    with db.session() as s:
        row = repo.get_job(s, job.id)
        assert 590 < eta(row) <= 600  # the engine's estimate, counting down
    repo.requeue_expired(db, now=utcnow() + timedelta(seconds=60))
    again = repo.claim_next(db, owner="w2", lease_seconds=30)
    assert again.eta_at is None  # a new attempt starts with no estimate of its own yet

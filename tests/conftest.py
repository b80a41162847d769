import os

import pytest
import torch

# Two cores: keep torch from oversubscribing them when pytest runs
torch.set_num_threads(int(os.environ.get("NAS_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---- databases: every store and API test runs on SQLite and on a fresh PostgreSQL database ----
import subprocess  # noqa: E402
import uuid  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _postgres_up() -> bool:
    import psycopg

    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False


def ensure_postgres() -> None:
    """PostgreSQL must be there: start the local cluster if it is down, else fail with a clear message."""
    if _postgres_up():
        return
    subprocess.run("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start", shell=True,
                   capture_output=True, timeout=60)
    if not _postgres_up():
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started; "
                    "the store and API tests need it (trust auth, user postgres)")


def fresh_postgres_database() -> tuple[str, object]:
    """A new empty database; returns its SQLAlchemy URL and a function that drops it."""
    import psycopg

    ensure_postgres()
    name = f"nas_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", drop


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nas.db'}"
        return
    url, drop = fresh_postgres_database()
    yield url
    drop()

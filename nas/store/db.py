"""Engines and sessions: SQLite file by default (WAL, busy timeout), PostgreSQL via NAS_DATABASE_URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "nas_alembic_version"  # our own, so an Optuna storage in the same database cannot clash


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def write_ahead(dbapi_conn: Any, _record: Any = None) -> None:
    """A SQLite connection that commits to a write-ahead log without an fsync per commit (the product's
    database and the Optuna studies alike); usable as a "connect" event listener."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # the pool outgrows the API's worker threads (40), so requests never queue for a connection
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=48,
                               max_overflow=16)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
            write_ahead(dbapi_conn)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:
            # BEGIN IMMEDIATE takes the write lock up front: the queue claim needs it to be atomic
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=40, max_overflow=20)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self, readonly: bool = False) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on error.

        On SQLite a transaction that may write takes the write lock up front (BEGIN IMMEDIATE): a deferred one
        that reads and then writes fails at once with "database is locked" when another connection committed
        in between (the busy timeout cannot help it), so the safe mode is the default. `readonly=True` lets a
        pure read run beside the writer instead; a read that forgets it only waits its turn."""
        if not readonly and is_sqlite(self.engine):
            with self.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn:
                with Session(bind=conn, expire_on_commit=False) as s, s.begin():
                    yield s
            return
        with self.sessions.begin() as s:
            yield s

    def dispose(self) -> None:
        self.engine.dispose()

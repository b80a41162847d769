"""Persistence: SQLAlchemy models, Alembic migrations and repository functions."""

from nas.store.db import Database, migrate
from nas.store.repo import StaleAttempt

__all__ = ["Database", "StaleAttempt", "migrate"]

"""Alembic environment: runs on the connection handed over by nas.store.db.migrate."""

from alembic import context

from nas.store.db import VERSION_TABLE
from nas.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()

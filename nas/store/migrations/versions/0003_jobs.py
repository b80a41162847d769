"""The queue holds jobs of any kind (searches, latency-table builds, ...): the `searches` table becomes
`jobs`, and the events and artifacts that belong to a job name it as `job_id`. Existing rows are kept.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# PostgreSQL and SQLite (3.26+) both keep foreign keys pointing at a renamed table or column.


def upgrade() -> None:
    op.drop_index('ix_searches_queue', table_name='searches')
    op.drop_index('ix_searches_owner_id', table_name='searches')
    op.drop_index('ix_events_search', table_name='events')
    op.drop_index('ix_artifacts_search_id', table_name='artifacts')
    op.rename_table('searches', 'jobs')
    op.execute('ALTER TABLE events RENAME COLUMN search_id TO job_id')
    op.execute('ALTER TABLE artifacts RENAME COLUMN search_id TO job_id')
    op.create_index('ix_jobs_queue', 'jobs', ['status', 'priority', 'created_at'], unique=False)
    op.create_index('ix_jobs_owner_id', 'jobs', ['owner_id'], unique=False)
    op.create_index('ix_events_job', 'events', ['job_id', 'id'], unique=False)
    op.create_index('ix_artifacts_job_id', 'artifacts', ['job_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_artifacts_job_id', table_name='artifacts')
    op.drop_index('ix_events_job', table_name='events')
    op.drop_index('ix_jobs_owner_id', table_name='jobs')
    op.drop_index('ix_jobs_queue', table_name='jobs')
    op.execute('ALTER TABLE artifacts RENAME COLUMN job_id TO search_id')
    op.execute('ALTER TABLE events RENAME COLUMN job_id TO search_id')
    op.rename_table('jobs', 'searches')
    op.create_index('ix_artifacts_search_id', 'artifacts', ['search_id'], unique=False)
    op.create_index('ix_events_search', 'events', ['search_id', 'id'], unique=False)
    op.create_index('ix_searches_owner_id', 'searches', ['owner_id'], unique=False)
    op.create_index('ix_searches_queue', 'searches', ['status', 'priority', 'created_at'], unique=False)

"""Candidates record the worker that evaluated them and the Ray Tune trial that fine-tuned them.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('candidates') as batch:
        batch.add_column(sa.Column('worker', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('trial_id', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('candidates') as batch:
        batch.drop_column('trial_id')
        batch.drop_column('worker')

"""Failed jobs say whose fault it was: error_kind ('user' or 'internal') and, for internal errors, the id of
the traceback file kept in the job's folder.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('searches') as batch:
        batch.add_column(sa.Column('error_kind', sa.String(length=12), nullable=True))
        batch.add_column(sa.Column('error_id', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('searches') as batch:
        batch.drop_column('error_id')
        batch.drop_column('error_kind')

"""Latency tables have an owner and a visibility (private, or shared with every user), and keep the profile
they were measured with (profiles with the same name may differ between users).

Tables registered before this revision stay visible to everyone (shared), as they were.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('latency_tables') as batch:
        batch.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('shared', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column('profile_spec', sa.JSON(), nullable=True))
        batch.create_foreign_key('fk_latency_tables_owner', 'users', ['owner_id'], ['id'], ondelete='CASCADE')
        batch.create_index('ix_latency_tables_owner_id', ['owner_id'], unique=False)
    op.execute('UPDATE latency_tables SET profile_spec = '
               '(SELECT spec FROM hardware_profiles WHERE hardware_profiles.id = latency_tables.profile_id)')


def downgrade() -> None:
    with op.batch_alter_table('latency_tables') as batch:
        batch.drop_index('ix_latency_tables_owner_id')
        batch.drop_constraint('fk_latency_tables_owner', type_='foreignkey')
        batch.drop_column('profile_spec')
        batch.drop_column('shared')
        batch.drop_column('owner_id')

"""recovery: fetch claims, calls in flight, estimated tokens

Revision ID: 0006_recovery
Revises: 0005_feedback

passes.fetch_owner/fetch_lease_expires_at: the process downloading the day (one at a time).
summaries.inflight_tokens: the estimated prompt tokens of a provider call in flight, so a worker
killed during the call leaves its cost to be counted. passes.estimated_tokens: how many of the
pass's tokens are such estimates.
"""
from alembic import op
import sqlalchemy as sa

revision = '0006_recovery'
down_revision = '0005_feedback'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('passes') as batch:
        batch.add_column(sa.Column('estimated_tokens', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('fetch_owner', sa.String(length=128), nullable=True))
        batch.add_column(sa.Column('fetch_lease_expires_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('summaries') as batch:
        batch.add_column(sa.Column('inflight_tokens', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('summaries') as batch:
        batch.drop_column('inflight_tokens')
    with op.batch_alter_table('passes') as batch:
        batch.drop_column('fetch_lease_expires_at')
        batch.drop_column('fetch_owner')
        batch.drop_column('estimated_tokens')

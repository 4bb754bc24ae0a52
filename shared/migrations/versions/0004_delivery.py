"""delivery: the outbox of digests to send by e-mail, webhook and git

Revision ID: 0004_delivery
Revises: 0003_fulltext

One row per (profile, announcement day, channel, recipient), written in the transaction that
publishes the profile; the deliverer claims a row (lease), sends it and marks it sent.
"""
from alembic import op
import sqlalchemy as sa

revision = '0004_delivery'
down_revision = '0003_fulltext'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'deliveries',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('pass_id', sa.Integer(), nullable=False),
        sa.Column('profile', sa.String(length=40), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('channel_key', sa.String(length=32), nullable=False),
        sa.Column('label', sa.String(length=200), nullable=False),
        sa.Column('recipient', sa.String(length=320), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('parts_sent', sa.Integer(), nullable=False),
        sa.Column('lease_owner', sa.String(length=128), nullable=True),
        sa.Column('lease_expires_at', sa.DateTime(), nullable=True),
        sa.Column('not_before', sa.DateTime(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['pass_id'], ['passes.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('profile', 'day', 'channel_key', 'recipient', name='uq_delivery_key'))
    op.create_index('ix_deliveries_status', 'deliveries', ['status', 'updated_at'])
    op.create_index('ix_deliveries_pass', 'deliveries', ['pass_id'])


def downgrade() -> None:
    op.drop_index('ix_deliveries_pass', table_name='deliveries')
    op.drop_index('ix_deliveries_status', table_name='deliveries')
    op.drop_table('deliveries')

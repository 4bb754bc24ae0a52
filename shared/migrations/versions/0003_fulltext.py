"""full texts: paper_texts (a paper version's text, read once), summaries.source,
summary_jobs.input_tokens

Revision ID: 0003_fulltext
Revises: 0002_profiles
Create Date: 2026-12-02 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_fulltext'
down_revision = '0002_profiles'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('paper_texts',
    sa.Column('paper_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('sections', sa.JSON(), nullable=False),
    sa.Column('tokens', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('extractor', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['paper_id'], ['papers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('paper_id', 'version')
    )
    with op.batch_alter_table('summaries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), nullable=True))
    with op.batch_alter_table('summary_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('input_tokens', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('summary_jobs', schema=None) as batch_op:
        batch_op.drop_column('input_tokens')
    with op.batch_alter_table('summaries', schema=None) as batch_op:
        batch_op.drop_column('source')
    op.drop_table('paper_texts')

"""feedback: readers' ratings ("more like this" / "less like this") per profile and paper

Revision ID: 0005_feedback
Revises: 0004_delivery

One row per (profile, paper): the last rating wins. Deleting a paper deletes its ratings.
"""
from alembic import op
import sqlalchemy as sa

revision = '0005_feedback'
down_revision = '0004_delivery'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ratings',
        sa.Column('profile', sa.String(length=40), nullable=False),
        sa.Column('paper_id', sa.String(length=64), nullable=False),
        sa.Column('rating', sa.String(length=8), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['paper_id'], ['papers.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('profile', 'paper_id'))


def downgrade() -> None:
    op.drop_table('ratings')

"""readers: per-profile scoring, selection, summaries by language, publications

Revision ID: 0002_profiles
Revises: 0001

pass_items keeps what is the same for every reader (the fetched paper); what a profile decided
moves to pass_profiles / profile_items, the summaries a pass needs to summary_jobs (one per paper
and language). Existing data becomes the "default" profile's: its digests, archive and summaries
are kept as they were.
"""
from alembic import op
import sqlalchemy as sa

revision = '0002_profiles'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'pass_profiles',
        sa.Column('pass_id', sa.Integer(), nullable=False),
        sa.Column('profile', sa.String(length=40), nullable=False),
        sa.Column('scored', sa.Boolean(), nullable=False),
        sa.Column('candidates', sa.Integer(), nullable=False),
        sa.Column('selected', sa.Integer(), nullable=False),
        sa.Column('published', sa.Boolean(), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['pass_id'], ['passes.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('pass_id', 'profile'))
    op.create_index('ix_pass_profiles_scored', 'pass_profiles', ['pass_id', 'scored'])
    op.create_index('ix_pass_profiles_published', 'pass_profiles', ['pass_id', 'published'])
    op.create_table(
        'profile_items',
        sa.Column('pass_id', sa.Integer(), nullable=False),
        sa.Column('profile', sa.String(length=40), nullable=False),
        sa.Column('paper_id', sa.String(length=64), nullable=False),
        sa.Column('rank', sa.Integer(), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('announce_type', sa.String(length=16), nullable=False),
        sa.Column('matched', sa.JSON(), nullable=True),
        sa.Column('match_details', sa.JSON(), nullable=True),
        sa.Column('updated', sa.Boolean(), nullable=False),
        sa.Column('summary_state', sa.String(length=16), nullable=True),
        sa.Column('language', sa.String(length=16), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['paper_id'], ['papers.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['pass_id'], ['passes.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('pass_id', 'profile', 'paper_id'))
    op.create_index('ix_profile_items_profile_paper', 'profile_items', ['profile', 'paper_id'])
    op.create_table(
        'summary_jobs',
        sa.Column('pass_id', sa.Integer(), nullable=False),
        sa.Column('paper_id', sa.String(length=64), nullable=False),
        sa.Column('language', sa.String(length=16), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('summary_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['paper_id'], ['papers.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['pass_id'], ['passes.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['summary_id'], ['summaries.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('pass_id', 'paper_id', 'language'))
    op.create_index('ix_summary_jobs_pass_state', 'summary_jobs', ['pass_id', 'state'])
    op.create_table(
        'profile_keys',
        sa.Column('profile', sa.String(length=40), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('rotated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('profile'))
    op.create_table(
        'app_secrets',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'))

    # The existing data is the "default" profile's.
    op.execute("""
        INSERT INTO pass_profiles (pass_id, profile, scored, candidates, selected, published, note, updated_at)
        SELECT id, 'default', status NOT IN ('fetching', 'scoring'), candidates, selected, status = 'published',
               NULL, updated_at FROM passes""")
    op.execute("""
        INSERT INTO profile_items (pass_id, profile, paper_id, rank, score, announce_type, matched, match_details,
                                   updated, summary_state, language, note)
        SELECT i.pass_id, 'default', i.paper_id, i.rank, COALESCE(i.score, 0), i.announce_type, i.matched,
               i.match_details, false,
               CASE WHEN i.summary_state = 'skipped' THEN 'skipped'
                    WHEN i.summary_state IS NOT NULL THEN 'requested' END,
               CASE WHEN i.summary_state IS NOT NULL AND i.summary_state != 'skipped'
                    THEN COALESCE(s.language, 'zh') END,
               CASE WHEN i.summary_state = 'skipped' THEN i.note END
        FROM pass_items i LEFT JOIN summaries s ON s.id = i.summary_id WHERE i.rank IS NOT NULL""")
    op.execute("""
        INSERT INTO summary_jobs (pass_id, paper_id, language, version, priority, state, summary_id, note, updated_at)
        SELECT i.pass_id, i.paper_id, COALESCE(s.language, 'zh'), i.version, i.rank, i.summary_state, i.summary_id,
               i.note, i.updated_at
        FROM pass_items i LEFT JOIN summaries s ON s.id = i.summary_id
        WHERE i.rank IS NOT NULL AND i.summary_state IS NOT NULL AND i.summary_state != 'skipped'""")

    with op.batch_alter_table('pass_items') as batch:
        batch.drop_index('ix_pass_items_pass_scored')
        batch.drop_index('ix_pass_items_pass_summary')
        for column in ('scored', 'score', 'matched', 'match_details', 'excluded_by', 'candidate', 'rank',
                       'summary_state', 'summary_id', 'note'):
            batch.drop_column(column)

    # publications gets the profile in its primary key: rebuilt (the same way on both databases).
    op.create_table(
        'publications_new',
        sa.Column('profile', sa.String(length=40), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('pass_id', sa.Integer(), nullable=False),
        sa.Column('published_at', sa.DateTime(), nullable=False),
        sa.Column('paper_count', sa.Integer(), nullable=False),
        sa.Column('readme_md', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['pass_id'], ['passes.id'], name='publications_pass_id_fkey'),
        sa.PrimaryKeyConstraint('profile', 'day', name='publications_pkey_new'))
    op.execute("""INSERT INTO publications_new (profile, day, pass_id, published_at, paper_count, readme_md)
                  SELECT 'default', day, pass_id, published_at, paper_count, readme_md FROM publications""")
    op.drop_table('publications')
    op.rename_table('publications_new', 'publications')


def downgrade() -> None:
    raise NotImplementedError("0002_profiles cannot be downgraded: restore a backup instead")

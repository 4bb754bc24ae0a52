"""The models match the migrations: a database brought to the head by the Alembic migrations
(shared.db.ensure_schema, as every command does) has exactly the tables, columns, types,
nullability, indexes and unique constraints that shared/models.py declares. Alembic's
autogenerate comparison must find nothing to do, on SQLite and on PostgreSQL: a model change
without its migration (or a migration the models do not know about) fails here.
"""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.db import HEAD_REVISION, current_revision, ensure_schema, make_engine
from shared.models import Base


def test_migrated_schema_equals_the_models(db_url):
    engine = make_engine(db_url)
    try:
        ensure_schema(engine)
        assert current_revision(engine) == HEAD_REVISION
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            diffs = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diffs == [], diffs

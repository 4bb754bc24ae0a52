"""Database engine and sessions (SQLAlchemy 2.0), created by factories, never at import.

- `make_engine(url)`: SQLite gets WAL + a busy timeout (several processes write in embedded and
  test setups); PostgreSQL gets pre-ping so a restarted server does not fail the next task.
- `session_factory(engine)`: use as `with Session.begin() as s:` (one transaction per unit of
  work; repository functions take the session as an argument).
- Forked workers: os.register_at_fork disposes the parent's pool in the child without closing
  the parent's connections (engine.dispose(close=False)), so each process opens its own.
- `ensure_schema(engine)`: brings the database to the Alembic head; when it already is there
  that costs one query (the version table's row), and Alembic is imported only when it is not.
"""
from __future__ import annotations

import logging
import os
import weakref
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from .errors import UserError, first_line

log = logging.getLogger(__name__)

# The newest migration in shared/migrations/versions (a test checks it matches Alembic's head).
HEAD_REVISION = "0006_recovery"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    # 1 MiB of page cache per connection instead of SQLite's 2 MiB: the file sits in the OS page
    # cache anyway (a miss costs one pread), and a one-shot run's peak memory counts it (issue 16).
    cur.execute("PRAGMA cache_size=-1024")
    cur.close()


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine for `url`; raises UserError with one line if the URL is unusable."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        from .redact import mask_url

        raise UserError(f"DATABASE_URL: cannot parse {mask_url(url)!r}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")  # the driver we install
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("connect_args", {"connect_timeout": 10})
        try:
            engine = create_engine(parsed, **kwargs)
        except Exception as exc:  # missing driver etc.
            raise UserError(f"DATABASE_URL: {exc.__class__.__name__}: {exc}") from None
    _engines.add(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)


def safe_url(engine_or_url) -> str:
    """The database URL as it may be shown: shared.redact.mask_url (userinfo password and
    secret query parameters such as ?password= masked), for any string, parseable or not."""
    from .redact import mask_url

    if isinstance(engine_or_url, Engine):
        return mask_url(engine_or_url.url.render_as_string(hide_password=False))
    return mask_url(str(engine_or_url))


def _unreachable(engine: Engine, exc: SQLAlchemyError) -> UserError:
    from .redact import redact_text, url_secrets

    # The driver's message may quote the DSN it was given: the URL's own secrets are scrubbed too.
    secrets = url_secrets(engine.url.render_as_string(hide_password=False))
    return UserError(f"database unreachable ({safe_url(engine)}): {redact_text(first_line(exc), secrets)}")


def check_connection(engine: Engine) -> None:
    """Raise UserError (one line) when the database does not answer."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise _unreachable(engine, exc) from None


def _no_such_table(exc: DBAPIError) -> bool:
    """The error of a query on a table that does not exist (SQLite, PostgreSQL's 42P01)."""
    return getattr(exc.orig, "sqlstate", None) == "42P01" or "no such table" in str(exc.orig)


def current_revision(engine: Engine) -> str | None:
    """The schema's Alembic revision, None before the first migration: one query, no reflection."""
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError as exc:
            if _no_such_table(exc):
                return None
            raise


def alembic_config(engine: Engine):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", safe_url(engine).replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every migration (arxiv-bot db upgrade). Serialised on PostgreSQL by an advisory lock
    so workers starting together do not race."""
    from alembic import command

    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(727274)"))
            try:
                if current_revision(engine) != HEAD_REVISION:
                    command.upgrade(alembic_config(engine), "head")
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(727274)"))
                conn.commit()
    elif engine.url.database and engine.url.database != ":memory:":
        import fcntl  # SQLite: several processes starting at once take turns through a file lock

        with open(f"{engine.url.database}.migrate-lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if current_revision(engine) != HEAD_REVISION:
                command.upgrade(alembic_config(engine), "head")
    else:
        command.upgrade(alembic_config(engine), "head")


def ensure_schema(engine: Engine) -> None:
    """Bring the database up to date; one query when it already is (and then Alembic is not even
    imported). UserError (one line) when the database does not answer."""
    try:
        if current_revision(engine) == HEAD_REVISION:
            return
    except SQLAlchemyError as exc:
        raise _unreachable(engine, exc) from None
    try:
        log.info("migrating database %s to %s", safe_url(engine), HEAD_REVISION)
        upgrade(engine)
    except OperationalError as exc:
        raise UserError(f"database migration failed: {first_line(exc)}") from None

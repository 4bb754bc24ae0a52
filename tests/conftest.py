"""Fixtures for real components: a fresh PostgreSQL database or SQLite file per test, a Redis
database flushed per test. Nothing here is faked: the tests talk to the local servers.

PostgreSQL: TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres) is the
admin connection used to CREATE/DROP a throw-away database per test. Redis: TEST_REDIS_URL
(default redis://127.0.0.1:6379) and TEST_REDIS_DB (default 9) pick the database flushed per test;
a concurrent run on the same machine takes the next free one (8-15).
"""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "9"))


def _pg_admin():
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for this test; dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:12]
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'arxiv-bot.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test using this runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'arxiv-bot.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def _redis_db():
    """A Redis database number this pytest run has to itself (tests/redis_dbs.py)."""
    from tests.redis_dbs import lock_free_db

    db, lock = lock_free_db(preferred=(REDIS_DB,))
    yield db
    lock.close()


@pytest.fixture
def redis_url(_redis_db):
    """A Redis database emptied before and after the test."""
    import redis

    url = f"{REDIS_BASE}/{_redis_db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()

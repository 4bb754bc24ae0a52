"""Fixtures for real components: a fresh PostgreSQL database or SQLite file per test, a Redis
database flushed per test. Nothing here is faked: the tests talk to the local servers.

PostgreSQL: TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres) is the
admin connection used to CREATE/DROP a throw-away database per test. Redis: TEST_REDIS_URL
(default redis://127.0.0.1:6379) and TEST_REDIS_DB (default 9) pick the database flushed per test;
a concurrent run on the same machine takes the next free one (8-15).
"""
from __future__ import annotations

import os

import pytest

from tests.pg_dbs import throwaway_database

PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "9"))


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for this test; dropped afterwards."""
    with throwaway_database(PG_ADMIN_URL) as url:
        yield url


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

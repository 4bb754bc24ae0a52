"""Fixtures for real components: a fresh PostgreSQL database or SQLite file per test, a Redis
database flushed per test. Nothing here is faked: the tests talk to the local servers.

PostgreSQL: TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres) is the
admin connection used to CREATE/DROP a throw-away database per test. Redis: TEST_REDIS_URL
(default redis://127.0.0.1:6379) and TEST_REDIS_DB (default 9) pick the database flushed per test;
each test locks its number (tests/redis_dbs.py), so pytest-xdist workers and other runs on the same
machine take the next free one (8-15). A test that breaks Redis uses `private_redis`: its own
redis-server on a free port, never the shared one.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

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


@pytest.fixture
def _redis_db():
    """A Redis database number this test has to itself (tests/redis_dbs.py)."""
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own (nothing on disk): free to SHUTDOWN and restart."""

    def __init__(self, workdir):
        self.port, self.dir = free_port(), workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        res = subprocess.run(["redis-cli", "-p", str(self.port), "PING"], capture_output=True, text=True)
        return res.stdout.strip() == "PONG"

    def start(self) -> "PrivateRedis":
        from tests.procs import _die_with_parent

        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 20
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private redis-server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self, down_seconds: float = 0.5) -> None:
        """Lose everything (SHUTDOWN NOSAVE), stay down a moment, start again on the same port."""
        subprocess.run(["redis-cli", "-p", str(self.port), "SHUTDOWN", "NOSAVE"], capture_output=True, timeout=10)
        self.proc.wait(timeout=10)
        time.sleep(down_seconds)
        self.start()


@pytest.fixture
def private_redis(tmp_path):
    """Its own redis-server on a free port, for tests that restart or break Redis."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()

"""Redis database numbers for tests and benchmarks that run at the same time on one machine.

Whoever needs a Redis database (a test, through conftest's `redis_url`; a second deployment
inside a test; a benchmark) locks a number 8-15 through a lock file for as long as it uses it, so
concurrent users (pytest-xdist workers, other test runs, benchmarks) never flush or consume each
other's queues. Locks are taken per test, not per run: eight numbers then serve any number of
runs, and a caller that finds all eight busy waits for one instead of failing.
"""
from __future__ import annotations

import fcntl
import time
from typing import IO

DATABASES = range(8, 16)


def lock_free_db(preferred: tuple[int, ...] = (), wait: float = 600.0) -> tuple[int, IO]:
    """Return (database number, open lock file); the number is ours until the file is closed.
    Waits up to `wait` seconds for a number to become free."""
    deadline = time.monotonic() + wait
    while True:
        for db in dict.fromkeys([*preferred, *DATABASES]):
            lock = open(f"/tmp/arxiv-bot-test-redis-db-{db}.lock", "w")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return db, lock
            except BlockingIOError:
                lock.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"no free Redis database (8-15) for {wait:.0f}s: too many concurrent test runs")
        time.sleep(0.2)

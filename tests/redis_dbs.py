"""Redis database numbers for tests and benchmarks that run at the same time on one machine.

Each run (a pytest session, a second deployment inside a test, a benchmark) locks a database
number 8-15 through a lock file, so concurrent runs never flush or consume each other's queues.
"""
from __future__ import annotations

import fcntl
from typing import IO

DATABASES = range(8, 16)


def lock_free_db(preferred: tuple[int, ...] = ()) -> tuple[int, IO]:
    """Return (database number, open lock file); the number is ours until the file is closed."""
    for db in dict.fromkeys([*preferred, *DATABASES]):
        lock = open(f"/tmp/arxiv-bot-test-redis-db-{db}.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return db, lock
        except BlockingIOError:
            lock.close()
    raise RuntimeError("no free Redis database (8-15): too many concurrent test runs")

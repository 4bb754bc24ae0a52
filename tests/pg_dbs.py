"""Throw-away PostgreSQL databases for tests and benchmarks: created empty, dropped afterwards
(WITH (FORCE), so a worker still connected does not keep it alive)."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine, text


@contextmanager
def throwaway_database(admin_url: str, prefix: str = "t_") -> Iterator[str]:
    """Yield the URL of a new empty database on the server `admin_url` points at."""
    name = prefix + uuid.uuid4().hex[:12]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()

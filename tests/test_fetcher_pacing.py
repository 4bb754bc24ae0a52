"""arXiv's 3-second rule across processes: two deployments (each its own database and broker)
share one Redis pacer, as two fetcher workers of one site would. Each real `arxiv-bot worker
fetcher` process fetches its feed and backfills two categories (2 requests each: the backfill
is one query for both) at the REAL 3.0 s interval; the stand-in's request log must show the
requests spaced by the interval, whichever process sent them (within SLACK: a request reaches
the stand-in's accept() some time after the pacer let it go, which on a loaded machine can be a
good part of a second; senders without a shared pacer give gaps of about 0).
bench/bench_pacing.py prints the measured gaps.
"""
from __future__ import annotations

import time

import pytest
import redis
from sqlalchemy import create_engine, select

from shared.models import FetchWatermark, Pass
from tests.conftest import REDIS_BASE
from tests.procs import Stack, write_config
from tests.redis_dbs import lock_free_db
from tests.standins.arxiv import ArxivStandin

SLACK = 1.0


@pytest.fixture
def second_redis_db(redis_url):
    """Another Redis database for the second deployment's broker, locked like conftest's."""
    db, lock = lock_free_db()
    url = f"{REDIS_BASE}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()
    lock.close()


def deployment(tmp_path, name, arxiv, broker, pacer_redis, categories) -> Stack:
    home = tmp_path / name
    home.mkdir()
    config = write_config(home, categories=categories, days_back=7, contact=f"mailto:{name}@example.org",
                          fetch={"min_interval_seconds": 3.0, "timeout_seconds": 20, "max_retries": 2,
                                 "api_page_size": 2000})
    env = {"ARXIV_BOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{home / 'db.sqlite'}",
           "OUTPUT_DIR": str(home / "output"), "ARXIV_RSS_URL": arxiv.rss_url, "ARXIV_API_URL": arxiv.api_url,
           "LLM_API_KEY": "", "BROKER_URL": broker, "REDIS_URL": pacer_redis}
    return Stack(home, env)


def fetched(stack: Stack) -> tuple[str, int, list]:
    engine = create_engine(stack.env["DATABASE_URL"])
    with engine.connect() as conn:
        p = conn.execute(select(Pass.status, Pass.fetched)).first()
        marks = conn.execute(select(FetchWatermark.category, FetchWatermark.last_day)).all() if p else []
    engine.dispose()
    return (p.status, p.fetched, marks) if p else ("none", 0, [])


def test_two_fetcher_processes_keep_3s_apart(tmp_path, redis_url, second_redis_db):
    with ArxivStandin() as arxiv:
        a = deployment(tmp_path, "a", arxiv, redis_url, redis_url, ["cs.CL", "cs.DC"])
        b = deployment(tmp_path, "b", arxiv, second_redis_db, redis_url, ["cs.DC", "cs.CL"])
        try:
            workers = [a.start_worker("fetcher", wait=False), b.start_worker("fetcher", wait=False)]
            for w in workers:
                w.wait_ready(timeout=90)
            a.cli("trigger")
            b.cli("trigger")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and any(fetched(s)[0] == "fetching" for s in (a, b)):
                time.sleep(0.2)
            states = [fetched(s) for s in (a, b)]
        finally:
            a.stop()
            b.stop()
        log = list(zip(arxiv.requests, arxiv.user_agents))

    for status, count, marks in states:
        assert status == "scoring" and count > 0, states
        assert sorted(c for c, _ in marks) == ["cs.CL", "cs.DC"]
    by = {name: [r for r, ua in log if ua.endswith(f"mailto:{name}@example.org)")] for name in ("a", "b")}
    assert [r[1] for r in by["a"]] == ["/rss/cs.CL+cs.DC", "/api/query"]
    assert [r[1] for r in by["b"]] == ["/rss/cs.DC+cs.CL", "/api/query"]
    times = sorted(r[0] for r, _ in log)
    assert len(times) == 4
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert min(gaps) >= 3.0 - SLACK, gaps

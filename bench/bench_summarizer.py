"""Benchmark the global LLM rate limit: 1, 2 and 4 real `arxiv-bot worker summarizer` processes
against a local provider that enforces N requests/min quantised per second (ceil(N/60) per
one-second window, 429 beyond) with 0.3 s latency.

For each process count: a throw-away PostgreSQL database gets the papers and a pass in the
summarizing stage, a `summarizer.summarize_paper` message per paper is sent by name over a real
Redis, and the run ends when the pass leaves the summarizing stage. Printed: achieved
requests/min (successful requests over the span from the first to the last one) divided by the
allowed rate, and the 429s. Run from the repository root:

    .venv/bin/python bench/bench_summarizer.py [--rpm 300] [--papers 60] [--procs 1,2,4]

Target: >= 0.95 of the allowed rate with 4 processes and <= 1 % of calls answered 429.
Needs PostgreSQL (BENCH_PG_URL, default the tests' admin URL) and Redis (BENCH_REDIS_URL).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from sqlalchemy import create_engine, text

from shared import names
from shared.models import PASS_SUMMARIZING, SUM_PENDING, Paper, Pass, PassProfile
from tests.seed import digest_item
from tests.pg_dbs import throwaway_database
from tests.procs import Stack, write_config
from tests.standins.llm import LLMStandin

PG_ADMIN = os.environ.get("BENCH_PG_URL", os.environ.get("TEST_PG_URL",
                                                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
KEY = "sk-bench-summarizer"
DAY = dt.date(2024, 11, 28)


def redis_db():
    """A Redis database no concurrent test run uses (tests/redis_dbs.py)."""
    from tests.redis_dbs import lock_free_db

    return lock_free_db()


def seed(db_url: str, n: int, language: str = "zh") -> int:
    from shared.db import ensure_schema, make_engine, session_factory

    engine = make_engine(db_url)
    ensure_schema(engine)
    with session_factory(engine).begin() as s:
        s.add_all(Paper(id=f"2411.{10000 + i}", version=1, title=f"Bench paper {i} on LLM serving",
                        abstract=f"Abstract {i}: " + "we study throughput and latency. " * 20, authors=["A. B"],
                        primary_category="cs.LG", categories=["cs.LG"], announced=DAY) for i in range(n))
        p = Pass(status=PASS_SUMMARIZING, active=1, trigger="bench", day=DAY, selected=n)
        s.add(p)
        s.flush()
        for i in range(n):
            digest_item(s, p.id, f"2411.{10000 + i}", day=DAY, rank=i + 1, score=1.0, summary_state=SUM_PENDING,
                        language=language)
        s.get(PassProfile, (p.id, "default")).published = False
        pass_id = p.id
    engine.dispose()
    return pass_id


def pass_status(db_url: str, pass_id: int) -> str:
    engine = create_engine(db_url)
    try:
        with engine.connect() as c:
            return c.execute(text("SELECT status FROM passes WHERE id = :i"), {"i": pass_id}).scalar()
    finally:
        engine.dispose()


def run(procs: int, rpm: float, n: int, latency: float, redis_url: str, tmp: Path) -> dict:
    import redis

    from shared.celery_app import create_app
    from shared.settings import load

    redis.Redis.from_url(redis_url).flushdb()
    home = Path(tempfile.mkdtemp(prefix=f"p{procs}-", dir=tmp))
    with throwaway_database(PG_ADMIN, prefix="bench_") as db_url:
        with LLMStandin(api_key=KEY, rpm_limit=rpm, latency=latency) as llm:
            cfg = write_config(home, ai_summary={"requests_per_minute": rpm, "tokens_per_minute": 10_000_000,
                                                 "max_retries": 10})
            stack = Stack(home, {"ARXIV_BOT_CONFIG": str(cfg), "DATABASE_URL": db_url, "OUTPUT_DIR": str(home / "out"),
                                 "LLM_BASE_URL": llm.base_url, "LLM_API_KEY": KEY, "BROKER_URL": redis_url,
                                 "REDIS_URL": redis_url})
            pass_id = seed(db_url, n)
            try:
                workers = [stack.start_worker("summarizer", wait=False) for _ in range(procs)]
                for w in workers:
                    w.wait_ready(120)
                config, settings = load(cfg, stack.env)
                app = create_app(settings, config)
                for i in range(n):
                    app.send_task(names.SUMMARIZE_PAPER, kwargs={"pass_id": pass_id, "paper_id": f"2411.{10000 + i}"},
                                  queue=names.SUMMARIZE_QUEUE, routing_key=names.SUMMARIZE_QUEUE)
                deadline = time.monotonic() + 120 + 3 * n * 60 / rpm
                while pass_status(db_url, pass_id) == PASS_SUMMARIZING:
                    if time.monotonic() > deadline:
                        tail = "".join(w.output()[-1500:] for w in workers)
                        raise SystemExit(f"{procs} processes: the pass did not finish in time\n{tail}")
                    time.sleep(0.1)
            finally:
                stack.stop()
            rows = [(t, st) for t, path, _, st in llm.requests if path.endswith("/chat/completions")]
    ok = sorted(t for t, st in rows if st == 200)
    span = ok[-1] - ok[0] if len(ok) > 1 else float("nan")
    achieved = (len(ok) - 1) / span * 60 if len(ok) > 1 else 0.0
    return {"procs": procs, "calls": len(rows), "ok": len(ok), "429": sum(1 for _, st in rows if st == 429),
            "seconds": span, "rpm": achieved, "ratio": achieved / rpm}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rpm", type=float, default=300.0, help="the provider's limit (and requests_per_minute)")
    ap.add_argument("--papers", type=int, default=60)
    ap.add_argument("--procs", default="1,2,4")
    ap.add_argument("--latency", type=float, default=0.3)
    args = ap.parse_args(argv)
    db, _lock = redis_db()
    redis_url = f"{REDIS_BASE}/{db}"
    print(f"provider: {args.rpm:g} requests/min ({-(-args.rpm // 60):g} per second window), "
          f"latency {args.latency} s; {args.papers} papers")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-summarizer-") as tmp:
        for procs in [int(x) for x in args.procs.split(",")]:
            r = run(procs, args.rpm, args.papers, args.latency, redis_url, Path(tmp))
            results.append(r)
            share = r["429"] / r["calls"] if r["calls"] else 0.0
            print(f"{procs} process(es): {r['ok']} summaries in {r['seconds']:.1f} s = {r['rpm']:.1f} req/min, "
                  f"{r['ratio']:.3f} of the allowed rate; 429s: {r['429']} of {r['calls']} calls ({share:.1%})",
                  flush=True)
    best = results[-1]
    met = best["ratio"] >= 0.95 and best["429"] <= 0.01 * best["calls"]
    print(f"target (>= 0.95 of the rate, <= 1% 429s with {best['procs']} processes): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

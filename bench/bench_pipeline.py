"""The whole pipeline in distributed mode: 4 services (fetcher, scorer, 2 summarizer replicas,
publisher) as real `arxiv-bot worker` processes over Redis + a throw-away PostgreSQL database,
against the local arXiv stand-in (no pacing) and the LLM stand-in (0.3 s per answer), over the
recorded 1504-item day and a 15,000-item day (the same items, ids shifted as in
bench_fetcher.big_day). Configured categories: every archive, so every announced item counts.

Prints the wall time of each stage (polling the pass status every 50 ms) and papers/s end to
end (fetched papers / trigger-to-published). Worker start-up is not counted. The stand-in caps a
feed at 2000 items like arXiv, so on the 15k day an archive with more is cut there (~11,000 fetched).
PostgreSQL: BENCH_PG_URL (admin URL). Redis: BENCH_REDIS_URL (a database 8-15 not locked by a
test run is used and flushed). Run: .venv/bin/python bench/bench_pipeline.py
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
STAGES = ("fetching", "scoring", "summarizing", "publishing")


def redis_db():
    """A Redis database no concurrent test run uses (tests/redis_dbs.py)."""
    from tests.redis_dbs import lock_free_db

    return lock_free_db()


def run_day(name: str, day_file: Path, tmp: Path, redis_url: str) -> None:
    import redis
    from sqlalchemy import create_engine, text

    from tests.faults import LLM_KEY, make_stack, passes
    from tests.standins.arxiv import ArxivStandin
    from tests.standins.arxiv_feeds import ARCHIVES
    from tests.pg_dbs import throwaway_database
    from tests.standins.llm import LLMStandin

    redis.Redis.from_url(redis_url).flushdb()
    with throwaway_database(PG_ADMIN, prefix="bench_") as db_url:
        with ArxivStandin(day_file) as arxiv, LLMStandin(api_key=LLM_KEY, latency=0.3) as llm:
            stack = make_stack(tmp, db_url, arxiv, llm, broker_url=redis_url, name=name,
                               categories=[a for a in ARCHIVES if a != "test"], announce_types=["new", "cross"],
                               sweep={"interval_seconds": 60, "stuck_after_seconds": 600},
                               ai_summary={"lease_seconds": 300, "timeout": 60})
            try:
                stack.start_all(summarizers=2)
                t0 = time.monotonic()
                stack.cli("trigger")
                seen = {"fetching": t0}
                status = "fetching"
                while status not in ("published", "empty", "failed"):
                    if time.monotonic() - t0 > 1800:
                        raise SystemExit(f"{name}: not finished after 30 min (status {status})")
                    rows = passes(db_url)
                    if rows and rows[-1][1] != status:
                        status = rows[-1][1]
                        seen.setdefault(status, time.monotonic())
                    time.sleep(0.05)
                end = time.monotonic()
            finally:
                stack.stop()
            eng = create_engine(db_url)
            with eng.connect() as c:
                fetched, selected = c.execute(text("SELECT fetched, selected FROM passes ORDER BY id DESC")).first()
            eng.dispose()
    marks = [(s, seen[s]) for s in STAGES if s in seen] + [(status, end)]
    parts = [f"{s} {b - a:6.2f}s" for (s, a), (_, b) in zip(marks, marks[1:])]
    total = end - t0
    print(f"{name:>10}: {fetched:6d} papers, {selected} in the digest, {status} in {total:6.2f}s "
          f"({fetched / total:7.1f} papers/s end to end) | " + " | ".join(parts), flush=True)


def main() -> None:
    from bench_fetcher import DAY, big_day

    print(f"host load average (1/5/15 min): {' / '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs", flush=True)
    db, lock = redis_db()
    redis_url = f"{REDIS}/{db}"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = tmp / "day-15k.xml"
        big.write_bytes(big_day(DAY.read_bytes(), copies=10))
        run_day("1504-day", DAY, tmp, redis_url)
        run_day("15k-day", big, tmp, redis_url)
    lock.close()


if __name__ == "__main__":
    main()

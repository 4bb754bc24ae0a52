"""Fetcher throughput: parse and store one real announcement day (1504 items) and a synthetic
15,000-item day (the same items with shifted ids), on SQLite and PostgreSQL.

Targets: parse >= 20,000 items/s; store >= 5,000 papers/s on PostgreSQL.
PostgreSQL: BENCH_PG_URL (admin URL; a throw-away database is created and dropped).
Run: .venv/bin/python bench/bench_fetcher.py
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DAY = ROOT / "tests/data/arxiv/rss/rss2_2024-11-28_all20archives_1504items.xml"
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def big_day(data: bytes, copies: int = 10) -> bytes:
    """`copies` times the day's items; copy k gets its ids moved k years back (2411.17700 ->
    2311.17700 for k = 1), so all differ and every id is still a valid arXiv id."""
    text = data.decode()
    head, rest = text.split("<item>", 1)
    body, tail = ("<item>" + rest).rsplit("</item>", 1)
    body += "</item>"
    parts = [head]
    for k in range(copies):
        parts.append(re.sub(r"(\d{4})\.(\d{5})", lambda m: f"{int(m.group(1)) - 100 * k:04d}.{m.group(2)}", body)
                     if k else body)
    parts.append(tail)
    return "".join(parts).encode()


def bench_parse(name: str, data: bytes, rounds: int = 5):
    from services.fetcher.rss import parse_rss

    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        result = parse_rss(data)
        best = min(best, time.perf_counter() - t)
    n = len(result.items)
    print(f"parse  {name:>12}: {n:6d} items in {best * 1000:7.1f} ms = {n / best:9.0f} items/s")
    return result.items


def bench_store(db: str, url: str, name: str, items, rounds: int = 3) -> None:
    """Best of `rounds` (fresh tables each time): a shared 2-core host is noisy."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from services.fetcher.ingest import upsert_papers
    from shared.models import Base

    engine = create_engine(url)
    first = again = float("inf")
    for _ in range(rounds):
        Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            t = time.perf_counter()
            res = upsert_papers(session, items)
            first = min(first, time.perf_counter() - t)
        with Session(engine) as session, session.begin():
            t = time.perf_counter()
            unchanged = upsert_papers(session, items).unchanged
            again = min(again, time.perf_counter() - t)
    print(f"store  {db:>10} {name:>6}: {len(res.new):6d} new in {first:6.2f} s = {len(items) / first:8.0f} "
          f"papers/s; re-run {len(unchanged)} unchanged at {len(items) / again:8.0f} papers/s")
    Base.metadata.drop_all(engine)
    engine.dispose()


def main() -> None:
    from sqlalchemy.exc import OperationalError

    from tests.pg_dbs import throwaway_database

    print(f"host load average (1/5/15 min): {' / '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs: numbers below are only comparable at similar load")
    data = DAY.read_bytes()
    big = big_day(data)
    days = {"1504": bench_parse("1504-day", data), "15k": bench_parse("15k-day", big)}
    with tempfile.TemporaryDirectory() as tmp:
        for name, items in days.items():
            bench_store("sqlite", f"sqlite:///{tmp}/bench-{name}.db", name, items)
    try:
        with throwaway_database(PG_ADMIN, prefix="bench_") as db_url:
            for name, items in days.items():
                bench_store("postgresql", db_url, name, items)
    except OperationalError as exc:  # no PostgreSQL here: report and keep the SQLite numbers
        print(f"store  postgresql: skipped ({type(exc).__name__}: cannot create a database at BENCH_PG_URL)")


if __name__ == "__main__":
    main()

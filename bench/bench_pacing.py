"""arXiv pacing as measured: two OS processes share one RedisPacer and send requests to the local
arXiv stand-in; the gaps between the requests as the stand-in accepted them are printed next to
the interval (the tests only assert that they are spaced; these are the numbers). Also the
spread of LocalPacer's slots across threads.

Redis: BENCH_REDIS_URL (a database 8-15 not locked by a test run is used).
Run: .venv/bin/python bench/bench_pacing.py [--interval 3.0] [--requests 4]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
CHILD = """
import sys, time
import redis
from services.fetcher.client import ArxivClient
from shared.arxiv_pacing import RedisPacer
rss, api, redis_url, interval, n, start_at, key = sys.argv[1:8]
pacer = RedisPacer(redis.Redis.from_url(redis_url), float(interval), key=key)
client = ArxivClient(rss, api, pacer, "arxiv-bot/bench (+pacing)", timeout=10, max_retries=0)
time.sleep(max(0.0, float(start_at) - time.time()))
for _ in range(int(n)):
    client.fetch_announcements(["cs.DC"])
"""


def two_processes(interval: float, per_process: int) -> list[float]:
    from tests.redis_dbs import lock_free_db
    from tests.standins.arxiv import ArxivStandin

    db, lock = lock_free_db()
    try:
        with ArxivStandin() as arxiv:
            start_at = time.time() + 2.0
            key = f"arxiv-bot:bench:{uuid.uuid4().hex}"
            procs = [subprocess.Popen([sys.executable, "-c", CHILD, arxiv.rss_url, arxiv.api_url, f"{REDIS}/{db}",
                                       str(interval), str(per_process), str(start_at), key], cwd=ROOT)
                     for _ in range(2)]
            for p in procs:
                if p.wait(timeout=120 + 4 * interval * per_process) != 0:
                    raise SystemExit("a sender failed")
            times = sorted(t for t, _, _ in arxiv.requests)
    finally:
        lock.close()
    return [b - a for a, b in zip(times, times[1:])]


def local_threads(interval: float, threads: int) -> list[float]:
    from shared.arxiv_pacing import LocalPacer

    pacer = LocalPacer(interval)
    done: list[float] = []
    workers = [threading.Thread(target=lambda: (pacer.wait(), done.append(time.monotonic()))) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.sort()
    return [b - a for a, b in zip(done, done[1:])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interval", type=float, default=3.0)
    ap.add_argument("--requests", type=int, default=4, help="requests per process")
    args = ap.parse_args()
    gaps = two_processes(args.interval, args.requests)
    print(f"RedisPacer, 2 processes x {args.requests} requests at {args.interval:.1f} s: gaps at the server "
          f"min {min(gaps):.3f} s, median {statistics.median(gaps):.3f} s, max {max(gaps):.3f} s "
          f"(min - interval {1000 * (min(gaps) - args.interval):+.0f} ms)")
    gaps = local_threads(0.2, 8)
    print(f"LocalPacer, 8 threads at 0.200 s: gaps between returns min {min(gaps):.3f} s, "
          f"max {max(gaps):.3f} s")


if __name__ == "__main__":
    main()

"""Recovery time per stage (issue 15): SIGKILL the worker holding a pass's work, time until the pass
is published by its surviving peer, median of --runs (default 3).

The set-up is tests/test_recovery.py's: real `arxiv-bot worker` processes (two of the stage under
test, one of every other), beat, PostgreSQL (a throw-away database per run) and Redis (a free
test database number), the arXiv and LLM stand-ins (the first summary answers in 8 s). The moment
of the kill is certain: the victim waits on a table lock held here (fetch, scoring's planning,
publishing) or is in a provider call (summarizing). Printed per stage: the median of the
recovery times (kill -> pass published) and the runs; the issue's goal is 60 s. Part of each time
is the rest of the pass (e.g. the other summaries), not only the recovery.

Config as in the tests (tests/faults.py make_stack): sweep every 2 s, lost work re-sent after 5 s,
summary leases of 15 s; liveness keys expire 15 s after a process's last heartbeat
(shared.liveness.TTL), which dominates the time to recover work in flight in a dead process.

Usage: .venv/bin/python bench/bench_recovery.py [--runs 3] [--stages fetcher,scorer,summarizer,publisher]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import PG_ADMIN_URL, REDIS_BASE  # noqa: E402
from tests.faults import LLM_KEY, start_beat, wait_pass  # noqa: E402
from tests.pg_dbs import throwaway_database  # noqa: E402
from tests.redis_dbs import lock_free_db  # noqa: E402
from tests.standins.arxiv import ArxivStandin  # noqa: E402
from tests.standins.llm import LLMStandin  # noqa: E402
from tests.test_recovery import STAGES, TableLock, _stack, kill_holder  # noqa: E402


def one_run(stage: str) -> float:
    import redis

    db, lock_file = lock_free_db()
    redis_url = f"{REDIS_BASE}/{db}"
    redis.Redis.from_url(redis_url).flushdb()
    try:
        with throwaway_database(PG_ADMIN_URL) as pg_url, tempfile.TemporaryDirectory() as tmp, \
                ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY, script=["slow"], slow_seconds=8) as llm:
            stack = _stack(Path(tmp), pg_url, redis_url, arxiv, llm, stage)
            table = STAGES[stage][0]
            lock = TableLock(pg_url, table) if table else None
            try:
                start_beat(stack)
                stack.cli("trigger")
                killed_at = kill_holder(stack, pg_url, redis_url, stage)
                if lock is not None:
                    lock.release()
                wait_pass(pg_url, timeout=600)
                return time.monotonic() - killed_at
            finally:
                if lock is not None:
                    lock.release()
                stack.stop()
    finally:
        redis.Redis.from_url(redis_url).flushdb()
        lock_file.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stages", default=",".join(STAGES))
    args = ap.parse_args()
    print(f"{'stage killed':<14} {'median s':>9}  runs (kill -> pass published; goal 60 s)")
    for stage in args.stages.split(","):
        times = [one_run(stage) for _ in range(args.runs)]
        print(f"{stage:<14} {statistics.median(times):>9.1f}  {', '.join(f'{t:.1f}' for t in times)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

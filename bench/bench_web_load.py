"""Web latency under load while passes publish: a real `arxiv-bot serve` (waitress, 2 processes)
answers N concurrent clients (one connection per request) for S seconds while `arxiv-bot run`
keeps publishing into the same PostgreSQL database. Prints requests, p50/p90/p99/max latency and
errors. (tests/test_faults_load.py asserts the outcomes only: every answer a success.)

PostgreSQL: BENCH_PG_URL (admin URL; a throw-away database is created and dropped).
Run: .venv/bin/python bench/bench_web_load.py [--clients 200] [--seconds 30]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()

    from tests.faults import LLM_KEY, make_stack
    from tests.pg_dbs import throwaway_database
    from tests.standins.arxiv import ArxivStandin
    from tests.standins.llm import LLMStandin
    from tests.test_faults_deps import free_port, start_serve
    from tests.test_faults_load import _client

    with tempfile.TemporaryDirectory(prefix="bench-web-load-") as tmp, \
            throwaway_database(PG_ADMIN, prefix="bench_") as db_url, \
            ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY) as llm:
        stack = make_stack(Path(tmp), db_url, arxiv, llm)
        stack.cli("run")
        port = free_port()
        web = start_serve(stack, port)
        try:
            runs: list[int] = []
            deadline = time.monotonic() + args.seconds

            def publish_again():
                while time.monotonic() < deadline - 5:
                    runs.append(stack.cli("run", check=False, timeout=120).returncode)
            latencies: list[float] = []
            errors: list = []
            threads = [threading.Thread(target=_client, args=(f"http://127.0.0.1:{port}", deadline, latencies,
                                                              errors, n), daemon=True) for n in range(args.clients)]
            publisher = threading.Thread(target=publish_again, daemon=True)
            publisher.start()
            for t in threads:
                t.start()
            for t in threads:
                t.join(args.seconds + 60)
            publisher.join(180)
        finally:
            web.terminate()
            web.wait(timeout=20)
    latencies.sort()
    q = lambda f: latencies[min(len(latencies) - 1, int(len(latencies) * f))] * 1000  # noqa: E731
    print(f"web under load: {args.clients} clients for {args.seconds:.0f}s: {len(latencies)} requests "
          f"({len(latencies) / args.seconds:.0f}/s), p50 {q(0.5):.0f} ms, p90 {q(0.9):.0f} ms, "
          f"p99 {q(0.99):.0f} ms, max {latencies[-1] * 1000:.0f} ms; {len(errors)} errors; "
          f"{len(runs)} passes published meanwhile ({runs.count(0)} ok)")


if __name__ == "__main__":
    main()

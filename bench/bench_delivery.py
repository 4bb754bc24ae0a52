"""Benchmark delivery: 10,000 e-mail recipients through a local SMTP server with 4 deliverer
worker processes, then 1,000 webhook posts (1,000 channels), over Redis and PostgreSQL.

A throw-away PostgreSQL database gets a published pass (a 30-paper digest, 3 with summaries) and
its outbox, planned by shared.passes.deliver as the publisher does it; one real
`arxiv-bot worker deliverer --concurrency 4` sends the deliver messages (50 rows each). The
SMTP server is tests/standins/smtp.py's SmtpSink (a minimal asyncio server in its own process:
aiosmtpd, which the tests use, handles DATA line by line and tops out near 70 messages/s of
45 KB on this 2-core machine, below what is measured here); the HTTP receiver runs in this
process. Printed, as
JSON lines: messages/s from the first message sent to the last row marked sent, and the peak
resident memory of the worker's processes. Run from the repository root:

    .venv/bin/python bench/bench_delivery.py [--emails 10000] [--webhooks 1000] [--procs 4]

Target: >= 100 e-mails/s. Needs PostgreSQL (BENCH_PG_URL) and Redis (BENCH_REDIS_URL).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

PG_ADMIN = os.environ.get("BENCH_PG_URL", os.environ.get("TEST_PG_URL",
                                                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
FORMATS = ("json", "slack", "discord", "telegram", "feishu")


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the worker and its pool children so far: what a message costs
    the deliverer whatever else the machine is doing."""
    total = 0.0
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    for p in [str(pid), *out]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def _wait_sent(S, ids: list[int], timeout: float) -> float:
    """Seconds until every row of `ids` is sent (or failed); raises on timeout."""
    from sqlalchemy import func, select

    from shared.models import DELIVERY_FAILED, DELIVERY_SENT, Delivery

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        with S() as s:
            done = s.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.id.between(min(ids), max(ids)), Delivery.status.in_([DELIVERY_SENT, DELIVERY_FAILED])))
        if done >= len(ids):
            return time.perf_counter() - t0
        time.sleep(0.25)
    raise TimeoutError(f"only {done} of {len(ids)} deliveries done after {timeout:.0f}s")


def run(emails: int, webhooks: int, procs: int) -> None:
    import redis

    from shared import names
    from shared.celery_app import create_app
    from shared.db import session_factory
    from shared.models import Delivery
    from shared.settings import Settings
    from tests.delivery_seed import make_runtime, paper_rows, plan, seed_pass
    from tests.pg_dbs import throwaway_database
    from tests.procs import Stack, peak_mb
    from tests.redis_dbs import lock_free_db
    from tests.standins.smtp import SmtpSink
    from tests.standins.webhooks import WebhookReceiver

    db_num, lock = lock_free_db()
    redis_url = f"{REDIS_BASE}/{db_num}"
    redis.Redis.from_url(redis_url).flushdb()
    tmp = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    to = [f"reader{i}@example.org" for i in range(emails)]
    hooks = [{"type": "webhook", "format": FORMATS[i % len(FORMATS)], "url_env": f"BENCH_HOOK_{i}"}
             for i in range(webhooks)]
    cfg = {"categories": ["cs.LG"], "feeds": {"public_url": "https://digest.example.org"},
           "delivery": {"timeout_seconds": 30, "lease_seconds": 300, "max_retries": 3},
           "profiles": {"mail": {"deliver": [{"type": "email", "to": to}]}, "chat": {"deliver": hooks}}}
    with throwaway_database(PG_ADMIN, prefix="bench_") as db_url, SmtpSink() as smtp, \
            WebhookReceiver(count_only=True) as receiver:
        env = {"DATABASE_URL": db_url, "BROKER_URL": redis_url, "REDIS_URL": redis_url, "SMTP_URL": smtp.url,
               "SMTP_FROM": "arxiv-bot <bot@example.org>", "OUTPUT_DIR": str(tmp / "out"), "LOG_LEVEL": "INFO",
               **{h["url_env"]: receiver.url(f"/{h['format']}/{i}") + ("?chat_id=1" if h["format"] == "telegram" else "")
                  for i, h in enumerate(hooks)}}
        (tmp / "config.json").write_text(json.dumps(cfg))
        env["ARXIV_BOT_CONFIG"] = str(tmp / "config.json")
        data = {k: v for k, v in cfg.items() if k not in ("feeds", "delivery")}
        rt = make_runtime(tmp, db_url, env=env, **data, delivery=cfg["delivery"])
        papers = paper_rows(30, hostile_first=False)
        pass_id = seed_pass(rt, papers, profile="mail")
        # Chat digests of 10 papers fit one post on every platform (a split digest is paced by the
        # platform's rate limit, which is not what this measures).
        seed_pass(rt, papers[:10], profile="chat", pass_id=pass_id)
        t0 = time.perf_counter()
        work = plan(rt, pass_id)
        plan_s = time.perf_counter() - t0
        S = session_factory(rt.engine)
        with S() as s:
            rows = dict(s.query(Delivery.id, Delivery.channel).all())
        mail_work = [w for w in work if rows[w[1]["delivery_ids"][0]] == "email"]
        hook_work = [w for w in work if rows[w[1]["delivery_ids"][0]] == "webhook"]
        print(json.dumps({"outbox_rows": len(rows), "planned_in_s": round(plan_s, 2)}))
        settings = Settings.from_env(rt.config, tmp / "config.json", {**os.environ, **env})
        app = create_app(settings, rt.config)
        stack = Stack(tmp, env)
        try:
            worker = stack.start_worker("deliverer", "--concurrency", str(procs), wait=False).wait_ready(300)
            for label, batch, counter in (("emails", mail_work, lambda: smtp.total),
                                          ("webhook_posts", hook_work, lambda: sum(receiver.counts.values()))):
                if not batch:
                    continue
                ids = [i for _, kw in batch for i in kw["delivery_ids"]]
                cpu = _cpu_seconds(worker.proc.pid)
                start = time.perf_counter()
                for task, kwargs in batch:
                    app.send_task(task, kwargs=kwargs, queue=names.DELIVER_QUEUE, routing_key=names.DELIVER_QUEUE)
                _wait_sent(S, ids, timeout=max(600, len(ids) / 5))
                wall = time.perf_counter() - start
                cpu = _cpu_seconds(worker.proc.pid) - cpu
                print(json.dumps({label: counter(), "rows": len(ids), "worker_processes": procs,
                                  "wall_s": round(wall, 1), f"{label}_per_s": round(counter() / wall, 1),
                                  "worker_cpu_ms_per_row": round(cpu * 1000 / len(ids), 2),
                                  "worker_peak_mb": round(peak_mb(worker.proc.pid)),
                                  "load_average": os.getloadavg()[0], "cores": os.cpu_count()}))
        finally:
            stack.stop()
            rt.engine.dispose()
    lock.close()
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--webhooks", type=int, default=1_000)
    parser.add_argument("--procs", type=int, default=4)
    args = parser.parse_args()
    run(args.emails, args.webhooks, args.procs)


if __name__ == "__main__":
    main()

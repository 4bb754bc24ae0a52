"""Distributed mode commands: `worker`, `beat` and `trigger` (Celery over Redis).

`trigger` opens the pass in the database itself (one active pass at a time; an unfinished one
is resumed) and enqueues its next stage by task name; `--wait` polls the database, never a
Celery result, until the pass ends.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from shared import lifecycle
from shared.config import Config
from shared.db import ensure_schema
from shared.errors import UserError, first_line
from shared.models import PASS_EMPTY, PASS_FAILED, PASS_PUBLISHED, PASS_TERMINAL, Pass
from shared.runtime import Runtime, set_runtime
from shared.settings import Settings

from . import services


def _runtime(config: Config, settings: Settings):
    """(runtime, Celery app): the process's runtime sends next stages through the app."""
    if not settings.broker_url:
        raise UserError("BROKER_URL is not set: distributed mode needs a broker (e.g. redis://127.0.0.1:6379/0); "
                        "`arxiv-bot run` works without one")
    from shared.celery_app import create_app
    from shared.dispatch import CeleryDispatcher

    app = create_app(settings, config)
    rt = Runtime(config, settings, dispatcher=CeleryDispatcher(app))
    set_runtime(rt)
    return rt, app


def check_broker(app) -> None:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=5)
    except Exception as exc:
        raise UserError(f"broker unreachable ({_safe_broker(app.conf.broker_url)}): {first_line(exc)}") from None


def _safe_broker(url: str) -> str:
    from shared.redact import mask_url

    return mask_url(url)


def run_worker(config: Config, settings: Settings, service: str, concurrency: int | None, pool: str | None) -> int:
    rt, app = _runtime(config, settings)
    ensure_schema(rt.engine)
    check_broker(app)
    queue = services.queue(service)
    services.register_tasks(service)
    concurrency = concurrency or int(os.environ.get("WORKER_CONCURRENCY") or 1)
    argv = ["worker", "-Q", queue, "-n", f"{service}-{os.getpid()}@%h", "-c", str(concurrency),
            "--loglevel", os.environ.get("LOG_LEVEL", "INFO"), "--without-mingle", "--without-gossip"]
    if pool:
        argv += ["--pool", pool]
    rt.engine.dispose()  # no connection crosses the fork into the pool's children
    app.worker_main(argv)
    return 0


def run_beat(config: Config, settings: Settings) -> int:
    _rt, app = _runtime(config, settings)
    check_broker(app)
    schedule = Path(os.environ.get("BEAT_SCHEDULE_FILE", "data/celerybeat-schedule"))
    schedule.parent.mkdir(parents=True, exist_ok=True)
    app.start(["beat", "--loglevel", os.environ.get("LOG_LEVEL", "INFO"), "--schedule", str(schedule)])
    return 0


def trigger(config: Config, settings: Settings, wait: bool, timeout: float, no_summaries: bool = False) -> int:
    rt, app = _runtime(config, settings)
    ensure_schema(rt.engine)
    check_broker(app)
    pass_id, created = lifecycle.start_pass(rt, "trigger", no_summaries)
    print(f"pass {pass_id} {'started' if created else 'already running: resumed'}")
    if not wait:
        return 0
    return wait_for(rt, pass_id, timeout)


def wait_for(rt: Runtime, pass_id: int, timeout: float) -> int:
    from .progress import Progress, outcome_line

    progress = Progress(rt, sys.stdout, min_interval=0)
    deadline = time.monotonic() + timeout
    next_sweep = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_sweep:
            # Recovery without beat: a user who triggers from their own cron waits here, so this
            # process sweeps too (one sweep per interval in the cluster, under the Redis lock).
            next_sweep = time.monotonic() + 2.0
            try:
                lifecycle.sweep(rt)
            except Exception as exc:  # the database or Redis restarting: the next round retries
                print(f"sweep failed: {type(exc).__name__}", file=sys.stderr)
        with rt.session() as s:
            p = s.get(Pass, pass_id)
            if p.status in PASS_TERMINAL:
                progress.step(force=True)
                line = outcome_line(s, p, rt.settings)
                break
        progress.step(force=True)
        time.sleep(0.5)
    else:
        raise UserError(f"pass {pass_id} not finished after {timeout:.0f}s (see `arxiv-bot status`)")
    if p.status == PASS_FAILED:
        raise UserError(f"pass {pass_id} failed: {p.error}")
    print(line)
    return 0 if p.status in (PASS_PUBLISHED, PASS_EMPTY) else 1

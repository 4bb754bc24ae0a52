"""Celery beat: the schedule built from config.json and a real `arxiv-bot beat` process.

Next run times are computed with Celery's own schedule API (crontab.remaining_estimate with a
fixed "now"), so this checks what beat will actually do: weekends skipped, the configured time
zone honoured (including daylight saving time), any cron fields accepted. The process test starts
`arxiv-bot beat` against the real Redis and reads the sweep message beat put on the `fetch` queue.
"""
from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis

from shared import celery_app, names
from shared.config import Config, load_config
from shared.settings import Settings
from tests.procs import BIN, ROOT, Stack, Worker, write_config

NY = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")


def _app(config: Config):
    settings = Settings.from_env(config, ROOT / "config.json", env={"BROKER_URL": "redis://127.0.0.1:6379/9"})
    return celery_app.create_app(settings, config)


def next_run(config: Config, now: datetime) -> datetime:
    """When beat would next send the daily pass, seen from `now` (a pass last ran at `now`)."""
    app = _app(config)
    sched = app.conf.beat_schedule["daily-pass"]["schedule"]
    sched.nowfun = lambda: now
    return now + sched.remaining_estimate(now)


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(ROOT / "config.json")


def test_daily_pass_entry(config):
    entry = celery_app.beat_schedule(config)["daily-pass"]
    assert entry["task"] == names.START_PASS
    assert entry["kwargs"] == {"trigger": "beat"}
    assert entry["options"]["queue"] == names.FETCH_QUEUE
    assert config.schedule.timezone == "America/New_York"
    assert _app(config).conf.timezone == "America/New_York"


@pytest.mark.parametrize("now, expected", [
    # Thursday just before the run: later the same night.
    (datetime(2024, 11, 28, 0, 0, tzinfo=NY), datetime(2024, 11, 28, 0, 30, tzinfo=NY)),
    # Friday after the run: Saturday and Sunday are skipped, Monday 00:30.
    (datetime(2024, 11, 29, 1, 0, tzinfo=NY), datetime(2024, 12, 2, 0, 30, tzinfo=NY)),
    # Sunday evening: Monday.
    (datetime(2024, 12, 1, 23, 0, tzinfo=NY), datetime(2024, 12, 2, 0, 30, tzinfo=NY)),
])
def test_default_schedule_is_weeknights_at_0030_new_york(config, now, expected):
    got = next_run(config, now)
    assert got == expected, got
    assert got.astimezone(NY).weekday() < 5


def test_time_zone_is_honoured_across_daylight_saving(config):
    # 00:30 in New York is 05:30 UTC in winter (EST) and 04:30 UTC in summer (EDT).
    winter = next_run(config, datetime(2024, 11, 28, 5, 0, tzinfo=UTC)).astimezone(UTC)
    assert (winter.day, winter.hour, winter.minute) == (28, 5, 30)
    summer = next_run(config, datetime(2024, 7, 2, 4, 0, tzinfo=UTC)).astimezone(UTC)
    assert (summer.day, summer.hour, summer.minute) == (2, 4, 30)


def test_configured_cron_fields_and_zone(config):
    custom = config.model_copy(update={"schedule": config.schedule.model_copy(
        update={"minute": "15", "hour": "6", "day_of_week": "sat", "timezone": "Europe/Berlin"})})
    berlin = ZoneInfo("Europe/Berlin")
    got = next_run(custom, datetime(2024, 11, 28, 12, 0, tzinfo=berlin))
    assert got.astimezone(berlin) == datetime(2024, 11, 30, 6, 15, tzinfo=berlin)
    assert got.astimezone(UTC).hour == 5  # CET is UTC+1


def test_sweep_entry_uses_the_configured_interval(config):
    entry = celery_app.beat_schedule(config)["sweep"]
    assert entry["task"] == names.SWEEP
    assert entry["schedule"] == config.sweep.interval_seconds == 10.0
    assert entry["options"] == {"queue": names.FETCH_QUEUE, "expires": 10.0}
    fast = config.model_copy(update={"sweep": config.sweep.model_copy(update={"interval_seconds": 7.5})})
    assert celery_app.beat_schedule(fast)["sweep"]["schedule"] == 7.5


def _queued_tasks(client, queue: str) -> list[str]:
    return [json.loads(raw)["headers"]["task"] for raw in client.lrange(queue, 0, -1)]


def test_beat_process_starts_and_sends_the_sweep(tmp_path, redis_url, sqlite_url):
    config = write_config(tmp_path, sweep={"interval_seconds": 1, "stuck_after_seconds": 5})
    stack = Stack(tmp_path, {"ARXIV_BOT_CONFIG": str(config), "DATABASE_URL": sqlite_url, "BROKER_URL": redis_url,
                             "OUTPUT_DIR": str(tmp_path / "output"),
                             "BEAT_SCHEDULE_FILE": str(tmp_path / "beat" / "schedule")})
    log = tmp_path / "beat.log"
    proc = subprocess.Popen([str(BIN), "beat"], env=stack.env, cwd=tmp_path, start_new_session=True,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    beat = Worker("beat", proc, log)
    stack.workers.append(beat)
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and names.SWEEP not in _queued_tasks(client, names.FETCH_QUEUE):
            assert proc.poll() is None, beat.output()[-3000:]
            time.sleep(0.2)
        out = beat.output()
        assert "beat: Starting..." in out, out[-3000:]
        assert f"Scheduler: Sending due task sweep ({names.SWEEP})" in out, out[-3000:]
        queued = _queued_tasks(client, names.FETCH_QUEUE)
        assert names.SWEEP in queued
        assert names.START_PASS not in queued  # the daily pass waits for its cron time
        for queue in (names.SCORE_QUEUE, names.SUMMARIZE_QUEUE, names.PUBLISH_QUEUE):
            assert client.llen(queue) == 0
        assert (tmp_path / "beat").is_dir()  # the schedule state file lives where it was told
    finally:
        stack.stop()
        client.close()


def test_next_run_helper_matches_celery_is_due(config):
    # is_due() at the computed time says "due now", a minute earlier it does not.
    now = datetime(2024, 11, 28, 0, 0, tzinfo=NY)
    run = next_run(config, now)
    sched = _app(config).conf.beat_schedule["daily-pass"]["schedule"]
    sched.nowfun = lambda: run + timedelta(seconds=1)
    assert sched.is_due(now).is_due is True
    sched.nowfun = lambda: run - timedelta(minutes=1)
    assert sched.is_due(now).is_due is False

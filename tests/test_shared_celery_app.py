"""Worker settings fit the work (issue 7, requirement 3), read from the real Celery app.

The app is built by shared.celery_app.create_app and every service's tasks.py is imported, exactly
as `arxiv-bot worker <service>` does; the assertions are on the resulting app and task objects.
A real worker is started too, to prove its concurrency comes from WORKER_CONCURRENCY.
"""
from __future__ import annotations

import subprocess

import pytest

from arxiv_bot import services
from shared import celery_app, names, tasking
from shared.config import load_config
from shared.settings import Settings
from tests.procs import BIN, ROOT, Stack, Worker, write_config


@pytest.fixture(scope="module")
def app():
    config = load_config(ROOT / "config.json")
    settings = Settings.from_env(config, ROOT / "config.json", env={"BROKER_URL": "redis://127.0.0.1:6379/9"})
    app = celery_app.create_app(settings, config)
    for service in services.SERVICES:
        services.register_tasks(service)
    return app


def _our_tasks(app) -> dict:
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_every_named_task_is_registered(app):
    assert set(_our_tasks(app)) == set(names.TASK_QUEUES)


def test_summarizer_acks_late_with_prefetch_one(app):
    task = app.tasks[names.SUMMARIZE_PAPER]
    assert task.acks_late is True
    # A lost worker's message goes back to the queue rather than being dropped.
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_every_task_has_soft_and_hard_time_limits(app):
    for name, task in _our_tasks(app).items():
        soft, hard = task.soft_time_limit, task.time_limit
        assert soft and hard, name
        assert 0 < soft < hard, (name, soft, hard)
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit


def test_visibility_timeout_exceeds_every_countdown_and_time_limit(app):
    vt = app.conf.broker_transport_options["visibility_timeout"]
    # A message waiting for its retry countdown (held unacked by the worker) or still running
    # must not be redelivered to a second worker by Redis meanwhile.
    assert vt > tasking.MAX_COUNTDOWN
    assert vt > celery_app.MAX_COUNTDOWN
    assert vt > max(task.time_limit for task in _our_tasks(app).values())
    handler = tasking.Handler(names.SWEEP, fn=lambda rt: None, backoff_cap=10_000)
    assert tasking.retry_delay(handler, 30, None) <= tasking.MAX_COUNTDOWN
    assert tasking.retry_delay(handler, 0, 99_999.0) <= tasking.MAX_COUNTDOWN


def test_one_queue_per_service_and_explicit_routes(app):
    assert app.conf.task_create_missing_queues is False
    assert {q.name for q in app.conf.task_queues} == set(names.QUEUES)
    services_of_queue = {}
    for service in services.SERVICES:
        queue = services.queue(service)
        services_of_queue.setdefault(queue, []).append(service)
        prefix = service + "."
        for name in _our_tasks(app):
            if name.startswith(prefix):
                route = app.amqp.router.route({}, name)
                assert route["queue"].name == queue, (name, route)
    assert all(len(s) == 1 for s in services_of_queue.values()), services_of_queue
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]


def test_worker_concurrency_comes_from_the_environment(tmp_path, redis_url, sqlite_url):
    home = tmp_path / "w"
    home.mkdir()
    stack = Stack(home, {"ARXIV_BOT_CONFIG": str(write_config(home)), "DATABASE_URL": sqlite_url,
                         "BROKER_URL": redis_url, "OUTPUT_DIR": str(home / "output"), "WORKER_CONCURRENCY": "3"})
    try:
        log = home / "scorer.log"
        proc = subprocess.Popen([str(BIN), "worker", "scorer"], env=stack.env, cwd=home, start_new_session=True,
                                stdout=open(log, "wb"), stderr=subprocess.STDOUT)
        worker = Worker("scorer", proc, log)
        stack.workers.append(worker)
        out = worker.wait_ready().output()
        assert "concurrency: 3 (prefork)" in out, out[-2000:]
        assert f".> {names.SCORE_QUEUE}" in out and f".> {names.FETCH_QUEUE}" not in out
    finally:
        stack.stop()


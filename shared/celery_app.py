"""The Celery app factory. Imported only by worker, beat and trigger code paths (Celery is heavy).

`create_app(settings, config)` builds an app with every queue declared, queue auto-creation off,
JSON only, explicit routes by task name, late acks off by default (enabled per task where the
task is idempotent), prefetch 1, and a Redis visibility timeout far above any retry countdown.
Task modules bind to the app the worker built through `shared_task`, so importing them does no
I/O and needs no app.
"""
from __future__ import annotations

from celery import Celery
from celery.schedules import crontab
from celery.signals import task_postrun, task_prerun, task_received, worker_process_init, worker_ready
from kombu import Exchange, Queue

from . import names
from .config import Config
from .settings import Settings

# Retry countdowns are capped far below the visibility timeout, so a message that waits for
# its countdown is never redelivered to a second worker meanwhile.
MAX_COUNTDOWN = 600
VISIBILITY_TIMEOUT = 6 * 3600

def create_app(settings: Settings, config: Config) -> Celery:
    app = Celery("arxiv_bot", broker=settings.broker_url, set_as_current=True)
    exchange = Exchange("arxiv-bot", type="direct")
    app.conf.update(
        task_queues=[Queue(q, exchange, routing_key=q) for q in names.QUEUES],
        task_default_queue=names.FETCH_QUEUE,
        task_default_exchange="arxiv-bot",
        task_routes={name: {"queue": q, "routing_key": q} for name, q in names.TASK_QUEUES.items()},
        task_create_missing_queues=False,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # stages talk through the database, never through results
        task_acks_late=False,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        task_soft_time_limit=900,
        task_time_limit=960,
        timezone=config.schedule.timezone,
        enable_utc=True,
        beat_schedule=beat_schedule(config),
    )
    return app


def beat_schedule(config: Config) -> dict:
    sch = config.schedule
    return {
        "daily-pass": {
            "task": names.START_PASS,
            "schedule": crontab(minute=sch.minute, hour=sch.hour, day_of_week=sch.day_of_week,
                                day_of_month=sch.day_of_month, month_of_year=sch.month_of_year),
            "kwargs": {"trigger": "beat"},
            "options": {"queue": names.FETCH_QUEUE},
        },
        "sweep": {
            "task": names.SWEEP,
            "schedule": config.sweep.interval_seconds,
            "options": {"queue": names.FETCH_QUEUE, "expires": config.sweep.interval_seconds},
        },
    }


@worker_process_init.connect
def _fresh_connections_in_child(**_kwargs) -> None:
    # Prefork children must not share the parent's DB connections (os.register_at_fork in
    # shared.db handles engines; this also drops any runtime state built before the fork).
    from . import liveness
    from .runtime import reset_after_fork

    reset_after_fork()
    liveness.after_fork()
    _start_heartbeat()


@worker_ready.connect
def _heartbeat_in_main_process(**_kwargs) -> None:
    _start_heartbeat()


def _start_heartbeat() -> None:
    """Every worker process says it is alive (shared.liveness) and, while it holds no work,
    sweeps: a worker that starts, or finds nothing to do while a pass is unfinished, recovers
    what a dead peer left (at most one sweep per interval in the cluster: lifecycle.sweep)."""
    from . import liveness
    from .celery_tasks import worker_runtime

    rt = worker_runtime()

    def idle() -> None:
        from .lifecycle import sweep

        sweep(rt)
    liveness.start(rt.settings.redis_url, idle)


# What each process holds, published in its liveness key: the sweep leaves held work alone.
@task_received.connect
def _received(request=None, **_kwargs) -> None:
    import time

    from . import liveness
    from .queued import units_of

    due = request.eta.timestamp() if request.eta else time.time()
    liveness.REGISTRY.hold(units_of(request.name, request.kwargs or {}), until=due + liveness.RECEIVED_GRACE)


@task_prerun.connect
def _running(task=None, kwargs=None, **_kwargs) -> None:
    from . import liveness
    from .queued import units_of

    liveness.REGISTRY.hold(units_of(task.name, kwargs or {}))


@task_postrun.connect
def _finished(task=None, kwargs=None, **_kwargs) -> None:
    from . import liveness
    from .queued import units_of

    liveness.REGISTRY.drop(units_of(task.name, kwargs or {}))

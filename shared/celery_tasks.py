"""The thin Celery side of every stage, built from the handler registry (shared.tasking).

`register(HANDLERS)` (called by each services/<name>/tasks.py) makes one Celery task per
handler, named by its task name, with the handler's late acks and time limits and the handler
function's docstring. A task body runs the plain handler and turns its errors into retries
through `tasking.outcome`, the same decision the embedded dispatcher takes: `self.retry` with
the server's Retry-After or jittered backoff (the count of real failures rides in the message,
since Celery's own count includes waits that are not failures), or give up (on_give_up has
recorded the reason in the database).
"""
from __future__ import annotations

import logging

from celery import shared_task

from .errors import PermanentError, TransientError
from .tasking import Handler, call, outcome

log = logging.getLogger(__name__)
ATTEMPT = "_attempt"  # failures so far, carried in the message


def worker_runtime():
    """The process's runtime, sending next stages through Celery (built on first use)."""
    from .runtime import get_runtime

    rt = get_runtime()
    if rt.dispatcher is None:
        from celery import current_app

        from .dispatch import CeleryDispatcher

        rt.dispatcher = CeleryDispatcher(current_app)
    return rt


def run_stage(task, handler: Handler, kwargs: dict):
    rt = worker_runtime()
    kwargs = dict(kwargs)
    attempt = int(kwargs.pop(ATTEMPT, 0))
    try:
        return call(handler, rt, kwargs)
    except (TransientError, PermanentError) as exc:
        out = outcome(handler, rt, kwargs, exc, attempt)
        if not out.retry:
            log.warning("%s %s: %s", task.name, _ids(kwargs), out.reason)
            return None
        log.info("%s %s: %s; retry in %.1fs", task.name, _ids(kwargs), exc, out.delay)
        raise task.retry(exc=exc, countdown=out.delay, max_retries=None, kwargs={**kwargs, ATTEMPT: out.attempt})


def register(handlers: list[Handler]) -> dict:
    """One Celery task per handler (shared_task: bound to whichever app the worker built)."""
    tasks = {}
    for handler in handlers:
        body = _body(handler)
        body.__name__ = handler.task.replace(".", "_")
        body.__doc__ = handler.fn.__doc__
        # max_retries=None: unlimited for Celery (its count includes waits that are not failures;
        # with its default of 3 a paper waiting on a peer's lease was dropped): the budget is ours.
        tasks[handler.task] = shared_task(name=handler.task, bind=True, acks_late=handler.acks_late, max_retries=None,
                                          soft_time_limit=handler.soft_time_limit,
                                          time_limit=handler.time_limit)(body)
    return tasks


def _body(handler: Handler):
    def body(self, **kwargs):
        return run_stage(self, handler, kwargs)
    return body


def _ids(kwargs: dict) -> str:
    parts = [f"pass={kwargs['pass_id']}"] if "pass_id" in kwargs else []
    if "paper_id" in kwargs:
        parts.append(f"paper={kwargs['paper_id']}")
    if "language" in kwargs:
        parts.append(f"language={kwargs['language']}")
    if "profiles" in kwargs:
        parts.append(f"profiles={len(kwargs['profiles'])}")
    return " ".join(parts)

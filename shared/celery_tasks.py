"""The thin Celery side of every stage: run the plain handler, turn its errors into retries.

A task body is one line, `return run_stage(self, HANDLER, kwargs)`. Retries follow
shared.tasking: TransientError -> `self.retry` with the server's Retry-After or jittered
exponential backoff (countdown capped far below the broker's visibility timeout); waits that are
not failures (rate limit, another worker's lease) do not use up the budget; after the budget,
or on a PermanentError, the handler's on_give_up records the reason in the database.
"""
from __future__ import annotations

import logging

from .errors import PermanentError, TransientError
from .runtime import get_runtime
from .tasking import Handler, call, retry_delay

log = logging.getLogger(__name__)
ATTEMPT = "_attempt"  # failures so far, carried in the message (Celery's own count includes waits)


def run_stage(task, handler: Handler, kwargs: dict):
    rt = get_runtime()
    kwargs = dict(kwargs)
    attempt = int(kwargs.pop(ATTEMPT, 0))
    try:
        return call(handler, rt, kwargs)
    except TransientError as exc:
        if exc.counts and attempt >= handler.retry_budget(rt):
            log.warning("%s %s: giving up after %d retries: %s", task.name, _ids(kwargs), attempt, exc)
            if handler.on_give_up:
                handler.on_give_up(rt, exc, **kwargs)
            return None
        delay = retry_delay(handler, attempt, exc.retry_after)
        log.info("%s %s: %s; retry in %.1fs", task.name, _ids(kwargs), exc, delay)
        raise task.retry(exc=exc, countdown=delay, max_retries=None,
                         kwargs={**kwargs, ATTEMPT: attempt + (1 if exc.counts else 0)})
    except PermanentError as exc:
        log.warning("%s %s: failed: %s", task.name, _ids(kwargs), exc)
        if handler.on_give_up:
            handler.on_give_up(rt, exc, **kwargs)
        return None


def _ids(kwargs: dict) -> str:
    parts = [f"pass={kwargs['pass_id']}"] if "pass_id" in kwargs else []
    if "paper_id" in kwargs:
        parts.append(f"paper={kwargs['paper_id']}")
    if "paper_ids" in kwargs:
        parts.append(f"papers={len(kwargs['paper_ids'])}")
    return " ".join(parts)

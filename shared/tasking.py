"""How a stage handler is declared and run: the one registry both run modes are built from.

A handler is a plain function `fn(rt, **kwargs)` holding the stage's logic. `Handler` names its
task (which fixes its queue, shared.names) and carries everything else about running it: late
acks, time limits, the retry budget, what to record when it gives up. services/<name>/tasks.py
turns a service's handlers into Celery tasks (shared.celery_tasks.register); the embedded runner
hands the same handlers to the LocalDispatcher. Both ask `outcome()` what a failure means:
- TransientError: retry after the server's Retry-After, else exponential backoff with full
  jitter, capped; waits that are not failures (counts=False) do not use up the budget; after the
  budget `on_give_up` records the failure in the database.
- PermanentError: no retry; `on_give_up` records the reason at once.
- anything else is a bug: logged with its traceback, and the sweep retries later.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

from . import names
from .errors import PermanentError, TransientError, first_line

MAX_COUNTDOWN = 600.0  # far below the broker's visibility timeout (shared.celery_app)


@dataclass(frozen=True)
class Handler:
    task: str                                # a task name from shared.names
    fn: Callable[..., Any]
    acks_late: bool = True                   # only for idempotent handlers (every stage is)
    soft_time_limit: float = 300
    time_limit: float = 330
    max_retries: int = 5
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    on_give_up: Callable[..., None] | None = None            # (rt, exc, **kwargs)
    retries_from_config: Callable[[Any], int] | None = None  # (rt) -> budget, when configurable
    # In one process the HTTP client has already retried, so some failures are reported at once.
    embedded_retries: int | None = None

    @property
    def queue(self) -> str:
        return names.TASK_QUEUES[self.task]

    def retry_budget(self, rt, embedded: bool = False) -> int:
        if embedded and self.embedded_retries is not None:
            return self.embedded_retries
        return self.retries_from_config(rt) if self.retries_from_config else self.max_retries


@dataclass(frozen=True)
class Outcome:
    """What to do after a handler raised: retry after `delay` (with `attempt` the failure count
    to carry), or give up (on_give_up has already run)."""

    retry: bool
    delay: float = 0.0
    attempt: int = 0
    reason: str = ""


def database_outage(exc: BaseException):
    """A TransientError for a lost or refused database connection (the database restarting, a
    terminated backend, SQLite busy), else None. Such failures are retried like a 503."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, (OperationalError, InterfaceError)) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return TransientError(f"database unavailable: {first_line(exc)}", retry_after=None)
    return None


def call(handler: Handler, rt, kwargs: dict) -> Any:
    """Run the handler; a lost database connection surfaces as a TransientError."""
    try:
        return handler.fn(rt, **kwargs)
    except Exception as exc:
        outage = database_outage(exc)
        if outage is None:
            raise
        raise outage from exc


def outcome(handler: Handler, rt, kwargs: dict, exc: TransientError | PermanentError, attempt: int,
            embedded: bool = False) -> Outcome:
    """The one retry decision. `attempt` is the number of counted failures so far."""
    if isinstance(exc, TransientError) and not (exc.counts and attempt >= handler.retry_budget(rt, embedded)):
        delay = retry_delay(handler, attempt, exc.retry_after)
        return Outcome(True, delay, attempt + (1 if exc.counts else 0), str(exc))
    if handler.on_give_up:
        handler.on_give_up(rt, exc, **kwargs)
    why = f"giving up after {attempt} retries" if isinstance(exc, TransientError) else "failed"
    return Outcome(False, reason=f"{why}: {exc}")


def retry_delay(handler: Handler, retries: int, retry_after: float | None) -> float:
    """Seconds to wait before retry number `retries + 1`."""
    if retry_after is not None and retry_after > 0:
        # The server said when; a little jitter keeps replicas from returning in lock-step.
        delay = retry_after + random.uniform(0, min(1.0, retry_after * 0.1))
    else:
        delay = random.uniform(0, min(handler.backoff_cap, handler.backoff_base * (2 ** retries)))
        delay = max(delay, 0.05)
    return min(delay, MAX_COUNTDOWN)


def table(*handler_lists) -> dict[str, Handler]:
    """{task name: handler} from services' HANDLERS lists; a name registered twice is a bug."""
    out: dict[str, Handler] = {}
    for handlers in handler_lists:
        for h in handlers:
            if h.task in out:
                raise ValueError(f"task {h.task} registered twice")
            out[h.task] = h
    return out

"""How a stage handler is run, shared by the Celery tasks and the embedded dispatcher.

A handler is a plain function `fn(rt, **kwargs)` holding the stage's logic. `Handler` adds its
retry budget and what to record when it gives up. Both run modes follow the same policy:
- TransientError: retry after the server's Retry-After, else exponential backoff with full
  jitter, capped; after `max_retries` call `on_give_up` so the failure is recorded in the DB.
- PermanentError: no retry; `on_give_up` records the reason at once.
- anything else is a bug: logged with its traceback by the worker, and the sweep retries later.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

MAX_COUNTDOWN = 600.0  # far below the broker's visibility timeout (shared.celery_app)


@dataclass(frozen=True)
class Handler:
    fn: Callable[..., Any]
    max_retries: int = 5
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    on_give_up: Callable[..., None] | None = None  # (rt, exc, **kwargs)
    retries_from_config: Callable[[Any], int] | None = None  # (rt) -> budget, when configurable

    def retry_budget(self, rt) -> int:
        return self.retries_from_config(rt) if self.retries_from_config else self.max_retries


def database_outage(exc: BaseException):
    """A TransientError for a lost or refused database connection (the database restarting, a
    terminated backend, SQLite busy), else None. Such failures are retried like a 503."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    from .errors import TransientError

    if isinstance(exc, (OperationalError, InterfaceError)) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated):
        first = str(getattr(exc, "orig", exc)).strip().splitlines()
        return TransientError(f"database unavailable: {first[0] if first else exc.__class__.__name__}",
                              retry_after=None)
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


def retry_delay(handler: Handler, retries: int, retry_after: float | None) -> float:
    """Seconds to wait before retry number `retries + 1`."""
    if retry_after is not None and retry_after > 0:
        # The server said when; a little jitter keeps replicas from returning in lock-step.
        delay = retry_after + random.uniform(0, min(1.0, retry_after * 0.1))
    else:
        delay = random.uniform(0, min(handler.backoff_cap, handler.backoff_base * (2 ** retries)))
        delay = max(delay, 0.05)
    return min(delay, MAX_COUNTDOWN)

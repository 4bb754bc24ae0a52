"""Sending work to the next stage by task name, in both run modes.

CeleryDispatcher puts a JSON message on the task's queue. LocalDispatcher (embedded mode) keeps
an in-process queue and runs the same handlers one after another, with the same retry policy
(shared.tasking), so `arxiv-bot run` and the distributed workers execute identical logic.
Callers dispatch only after their transaction has committed.
"""
from __future__ import annotations

import heapq
import importlib
import itertools
import logging
import time
from typing import Any, Protocol

from . import names
from .errors import PermanentError, TransientError
from .tasking import Handler, call, retry_delay

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    def send(self, task: str, kwargs: dict[str, Any], countdown: float | None = None) -> None: ...


class CeleryDispatcher:
    def __init__(self, app):
        self.app = app

    def send(self, task: str, kwargs: dict[str, Any], countdown: float | None = None) -> None:
        queue = names.TASK_QUEUES[task]
        self.app.send_task(task, kwargs=kwargs, queue=queue, routing_key=queue, countdown=countdown)


def load_handlers() -> dict[str, Handler]:
    table: dict[str, Handler] = {}
    for module in names.HANDLER_MODULES:
        table.update(importlib.import_module(module).HANDLERS)
    return table


class LocalDispatcher:
    """Runs handlers in this process in due-time order until no work is left."""

    def __init__(self, handlers: dict[str, Handler] | None = None):
        self.handlers = handlers if handlers is not None else load_handlers()
        self._heap: list[tuple[float, int, str, dict, int]] = []
        self._seq = itertools.count()
        self.on_step = None  # optional progress callback(task_name)

    def send(self, task: str, kwargs: dict[str, Any], countdown: float | None = None, _retries: int = 0) -> None:
        due = time.monotonic() + (countdown or 0.0)
        heapq.heappush(self._heap, (due, next(self._seq), task, dict(kwargs), _retries))

    def pending(self) -> int:
        return len(self._heap)

    def run_until_idle(self, rt) -> None:
        while self._heap:
            due, _, task, kwargs, retries = heapq.heappop(self._heap)
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            handler = self.handlers[task]
            try:
                call(handler, rt, kwargs)
            except TransientError as exc:
                if exc.counts and retries >= handler.retry_budget(rt):
                    log.warning("%s gave up after %d retries: %s", task, retries, exc)
                    if handler.on_give_up:
                        handler.on_give_up(rt, exc, **kwargs)
                else:
                    delay = retry_delay(handler, retries, exc.retry_after)
                    log.info("%s: %s; retry %d in %.1fs", task, exc, retries + 1, delay)
                    self.send(task, kwargs, countdown=delay, _retries=retries + (1 if exc.counts else 0))
            except PermanentError as exc:
                log.warning("%s failed: %s", task, exc)
                if handler.on_give_up:
                    handler.on_give_up(rt, exc, **kwargs)
            if self.on_step:
                self.on_step(task)

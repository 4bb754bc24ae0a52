"""Sending work to the next stage by task name, in both run modes.

CeleryDispatcher puts a JSON message on the task's queue. LocalDispatcher (embedded mode) keeps
an in-process queue and runs the same handlers with the same retry decision
(shared.tasking.outcome), so `arxiv-bot run` and the distributed workers execute identical
logic. Each queue runs one task at a time unless given more threads: the summarize queue gets
`ai_summary.max_workers`, as a summarizer worker would get processes (the provider's limits are
enforced by the shared limiter, not by the number of threads). Callers dispatch only after their
transaction has committed.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from . import names
from .errors import PermanentError, TransientError
from .tasking import Handler, call, outcome

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    def send(self, task: str, kwargs: dict[str, Any], countdown: float | None = None) -> None: ...


class CeleryDispatcher:
    def __init__(self, app):
        self.app = app

    def send(self, task: str, kwargs: dict[str, Any], countdown: float | None = None) -> None:
        queue = names.TASK_QUEUES[task]
        self.app.send_task(task, kwargs=kwargs, queue=queue, routing_key=queue, countdown=countdown)


class LocalDispatcher:
    """Runs handlers in this process in due-time order until no work is left."""

    def __init__(self, handlers: dict[str, Handler], threads: dict[str, int] | None = None):
        self.handlers = handlers
        self.threads = {q: max(1, (threads or {}).get(q, 1)) for q in names.QUEUES}
        self._heap: list[tuple[float, int, str, dict, int]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._running = dict.fromkeys(names.QUEUES, 0)
        self._done: list[str] = []
        self._error: BaseException | None = None
        self.on_step = None  # optional progress callback(task_name), called on this thread

    def send(self, task: str, kwargs: dict[str, Any], countdown: float | None = None, _attempt: int = 0) -> None:
        due = time.monotonic() + (countdown or 0.0)
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._seq), task, dict(kwargs), _attempt))
            self._cond.notify_all()

    def run_until_idle(self, rt) -> None:
        """Run until nothing is queued or running; re-raises the first unexpected error (a bug)."""
        with ThreadPoolExecutor(max_workers=sum(self.threads.values())) as pool:
            while True:
                with self._cond:
                    job = self._next_job()
                    done, self._done = self._done, []
                    if self._error is not None:
                        raise self._error
                if self.on_step:
                    for task in done:
                        self.on_step(task)
                if job == "idle":
                    return
                if job is not None:
                    pool.submit(self._run, rt, *job)

    def _next_job(self):
        """Under the lock: the earliest due message whose queue has a free thread, or "idle",
        or None after waiting for something to change."""
        if not self._heap and not any(self._running.values()):
            return "idle" if not self._done else None
        if self._done:
            return None  # report progress first
        skipped, job, wait = [], None, None
        while self._heap:
            due, seq, task, kwargs, attempt = heapq.heappop(self._heap)
            queue = names.TASK_QUEUES[task]
            if self._running[queue] >= self.threads[queue]:
                skipped.append((due, seq, task, kwargs, attempt))
                continue
            now = time.monotonic()
            if due > now:
                skipped.append((due, seq, task, kwargs, attempt))
                wait = due - now
                break
            self._running[queue] += 1
            job = (task, kwargs, attempt)
            break
        for entry in skipped:
            heapq.heappush(self._heap, entry)
        if job is None:
            self._cond.wait(timeout=wait)
        return job

    def _run(self, rt, task: str, kwargs: dict, attempt: int) -> None:
        handler = self.handlers[task]
        try:
            call(handler, rt, kwargs)
        except (TransientError, PermanentError) as exc:
            out = outcome(handler, rt, kwargs, exc, attempt, embedded=True)
            if out.retry:
                log.info("%s: %s; retry in %.1fs", task, exc, out.delay)
                self.send(task, kwargs, countdown=out.delay, _attempt=out.attempt)
            else:
                log.warning("%s: %s", task, out.reason)
        except BaseException as exc:  # a bug: stop the run and report it on the main thread
            with self._cond:
                self._error = self._error or exc
        finally:
            with self._cond:
                self._running[names.TASK_QUEUES[task]] -= 1
                self._done.append(task)
                self._cond.notify_all()

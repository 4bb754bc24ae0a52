"""The services this program runs, and where their handlers live.

Only the command-line layer names services: `arxiv-bot worker <service>` imports the service's
tasks module (which registers its Celery tasks), and embedded mode hands every service's
handlers to the LocalDispatcher. Each service consumes exactly one queue: the queue of its
handlers' task names (shared.names).
"""
from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping

from shared import names

SERVICES = ("fetcher", "scorer", "summarizer", "publisher", "deliverer")
# The service consuming each queue (queue() checks it against the handlers' own task names).
QUEUE_SERVICE = {names.FETCH_QUEUE: "fetcher", names.SCORE_QUEUE: "scorer", names.SUMMARIZE_QUEUE: "summarizer",
                 names.PUBLISH_QUEUE: "publisher", names.DELIVER_QUEUE: "deliverer"}


def handlers(service: str) -> list:
    return importlib.import_module(f"services.{service}.handlers").HANDLERS


def queue(service: str) -> str:
    queues = {h.queue for h in handlers(service)}
    if len(queues) != 1:
        raise RuntimeError(f"service {service} must consume one queue, its handlers use {sorted(queues)}")
    found = queues.pop()
    if QUEUE_SERVICE.get(found) != service:
        raise RuntimeError(f"service {service} consumes queue {found}, QUEUE_SERVICE says {QUEUE_SERVICE.get(found)}")
    return found


def register_tasks(service: str) -> dict:
    """Import the service's tasks module: its Celery tasks, by name."""
    return importlib.import_module(f"services.{service}.tasks").TASKS


class HandlerTable(Mapping):
    """{task name: Handler} of every service (embedded mode runs them all in one process), each
    service's handlers imported the first time one of its tasks is looked up: a pass with AI off
    never loads the summarizer, nor one without delivery channels the deliverer (about 1.5 MB and
    30 ms of a one-shot run). Thread-safe: summaries and deliveries look up from pool threads."""

    def __init__(self):
        self._handlers: dict = {}
        self._loaded: set[str] = set()
        self._lock = threading.Lock()

    def _load(self, service: str) -> None:
        from shared.tasking import table

        with self._lock:
            if service not in self._loaded:
                # table() raises when a task is registered twice, across services too.
                self._handlers = table(self._handlers.values(), handlers(service))
                self._loaded.add(service)

    def __getitem__(self, task: str):
        handler = self._handlers.get(task)
        if handler is None:
            self._load(QUEUE_SERVICE[names.TASK_QUEUES[task]])  # KeyError: no such task
            handler = self._handlers[task]
        return handler

    def __iter__(self):
        return iter(names.TASK_QUEUES)

    def __len__(self) -> int:
        return len(names.TASK_QUEUES)


def handler_table() -> HandlerTable:
    return HandlerTable()

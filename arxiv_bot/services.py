"""The services this program runs, and where their handlers live.

Only the command-line layer names services: `arxiv-bot worker <service>` imports the service's
tasks module (which registers its Celery tasks), and embedded mode hands every service's
handlers to the LocalDispatcher. Each service consumes exactly one queue: the queue of its
handlers' task names (shared.names).
"""
from __future__ import annotations

import importlib

SERVICES = ("fetcher", "scorer", "summarizer", "publisher", "deliverer")


def handlers(service: str) -> list:
    return importlib.import_module(f"services.{service}.handlers").HANDLERS


def queue(service: str) -> str:
    queues = {h.queue for h in handlers(service)}
    if len(queues) != 1:
        raise RuntimeError(f"service {service} must consume one queue, its handlers use {sorted(queues)}")
    return queues.pop()


def register_tasks(service: str) -> dict:
    """Import the service's tasks module: its Celery tasks, by name."""
    return importlib.import_module(f"services.{service}.tasks").TASKS


def handler_table() -> dict:
    """{task name: Handler} of every service (embedded mode runs them all in one process)."""
    from shared.tasking import table

    return table(*(handlers(s) for s in SERVICES))

"""Celery tasks of the deliverer service, built from its handlers (services/deliverer/handlers.py):
names, queue, late acks, time limits and retries all come from the handler registry."""
from __future__ import annotations

from shared.celery_tasks import register

from .handlers import HANDLERS

TASKS = register(HANDLERS)

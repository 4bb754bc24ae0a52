"""Celery tasks of the publisher service (queue `publish`). Thin: logic in handlers.py."""
from __future__ import annotations

from celery import shared_task

from shared import names
from shared.celery_tasks import run_stage

from .handlers import HANDLERS


@shared_task(name=names.PUBLISH_PASS, bind=True, acks_late=True, soft_time_limit=300, time_limit=330)
def publish_pass(self, **kwargs):
    """Write a pass's outputs atomically and mark it published. Idempotent: a pass that is not
    publishing any more is left alone; a repeat rewrites identical files."""
    return run_stage(self, HANDLERS[names.PUBLISH_PASS], kwargs)

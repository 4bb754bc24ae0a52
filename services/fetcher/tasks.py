"""Celery tasks of the fetcher service (queue `fetch`). Thin: the logic is in handlers.py."""
from __future__ import annotations

from celery import shared_task

from shared import names
from shared.celery_tasks import run_stage

from .handlers import HANDLERS


@shared_task(name=names.START_PASS, bind=True, acks_late=True, soft_time_limit=60, time_limit=90)
def start_pass(self, **kwargs):
    """Open a pass, or resume the active one. Two at once still make one pass (DB unique slot)."""
    return run_stage(self, HANDLERS[names.START_PASS], kwargs)


@shared_task(name=names.FETCH_PASS, bind=True, acks_late=True, soft_time_limit=1800, time_limit=1860)
def fetch_pass(self, **kwargs):
    """Fetch and store a pass's announcements in one transaction, then enqueue scoring.
    Idempotent: does nothing unless the pass is still fetching."""
    return run_stage(self, HANDLERS[names.FETCH_PASS], kwargs)


@shared_task(name=names.SWEEP, bind=True, acks_late=False, soft_time_limit=60, time_limit=90)
def sweep(self, **kwargs):
    """Re-enqueue work stuck in any stage longer than sweep.stuck_after_seconds."""
    return run_stage(self, HANDLERS[names.SWEEP], kwargs)

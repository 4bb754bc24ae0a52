"""Celery tasks of the scorer service (queue `score`). Thin: the logic is in handlers.py."""
from __future__ import annotations

from celery import shared_task

from shared import names
from shared.celery_tasks import run_stage

from .handlers import HANDLERS


@shared_task(name=names.SCORE_BATCH, bind=True, acks_late=True, soft_time_limit=300, time_limit=330)
def score_batch(self, **kwargs):
    """Score a batch of a pass's papers; the last batch triggers the selection exactly once
    (decided by a conditional UPDATE in the database). Redelivery re-scores nothing."""
    return run_stage(self, HANDLERS[names.SCORE_BATCH], kwargs)

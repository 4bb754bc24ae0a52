"""Celery tasks of the summarizer service (queue `summarize`). Thin: logic in handlers.py."""
from __future__ import annotations

from celery import shared_task

from shared import names
from shared.celery_tasks import run_stage

from .handlers import HANDLERS


@shared_task(name=names.SUMMARIZE_PAPER, bind=True, acks_late=True, soft_time_limit=600, time_limit=660)
def summarize_paper(self, **kwargs):
    """Summarize one paper of a pass under the global rate limit. Never pays twice: reuses a
    stored summary, and a DB lease keeps replicas off the same paper. Acks late: a worker killed
    mid-call leaves the message to be redelivered, and the expired lease is taken over."""
    return run_stage(self, HANDLERS[names.SUMMARIZE_PAPER], kwargs)

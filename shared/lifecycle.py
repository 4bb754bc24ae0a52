"""Driving passes from outside the stages: opening (or resuming) one, and the sweep.

start_pass: open a pass (or find the running one: one pass at a time) and send its next step. A
  pass that is already active is resumed: everything it still needs is sent again at once
  (messages may have been lost with Redis, which keeps nothing on disk); handlers are idempotent,
  so a message that still exists elsewhere only costs a no-op.
sweep: re-send work of the active pass untouched for `sweep.stuck_after_seconds` (the database is
  the source of truth; Redis may lose messages, workers may be killed mid-task), and deliveries
  of any pass that are stuck (pending that long, or claimed by a worker whose lease expired).
  What it re-sends is marked as touched, so the same work is re-sent at most once per stuck age.
Both are used by beat's tasks (on the fetch queue), `arxiv-bot trigger` and `arxiv-bot run`.
"""
from __future__ import annotations

import datetime as dt
import logging

from . import passes
from .models import utcnow

log = logging.getLogger(__name__)


def start_pass(rt, trigger: str = "beat", no_summaries: bool = False) -> tuple[int, bool]:
    """Open a pass, or resume the active one; returns (its id, whether it is new). Two callers at
    once get the same pass (the unique active slot in the database)."""
    with rt.session() as s:
        p, created, work = passes.begin(s, trigger, no_summaries)
        pass_id, status = p.id, p.status
        work += passes.pending_deliveries(s)  # an earlier run's unsent digests
    if not created:
        log.info("pass %d already active (%s); resuming it (%d messages)", pass_id, status, len(work))
    rt.send_all(work)
    return pass_id, created


def sweep(rt) -> int:
    """Re-send the active pass's work untouched for `sweep.stuck_after_seconds` (never a summary
    under a live lease); returns how many messages were sent."""
    older = utcnow() - dt.timedelta(seconds=rt.config.sweep.stuck_after_seconds)
    with rt.session() as s:
        deliveries = passes.pending_deliveries(s, older_than=older)
        p = passes.active_pass(s)
        work = []
        if p is not None:
            pass_id, status = p.id, p.status
            work = passes.pending_work(s, p, older_than=older)
            passes.touch(s, pass_id, work)
    rt.send_all(work + deliveries)
    if work:
        log.info("sweep: pass %d (%s): re-enqueued %d messages", pass_id, status, len(work))
    if deliveries:
        log.info("sweep: re-enqueued %d delivery batches", len(deliveries))
    return len(work) + len(deliveries)

"""Pass-level tasks that run on the fetch queue: opening a pass and the periodic sweep.

start_pass: open a pass (or find the running one: one pass at a time) and enqueue its next step.
sweep: re-enqueue work stuck in any stage (the DB is the source of truth; Redis may lose
  messages, workers may be killed).
"""
from __future__ import annotations

import datetime as dt
import logging

from shared import names, passes
from shared.models import utcnow

log = logging.getLogger(__name__)


def start_pass(rt, trigger: str = "beat", no_summaries: bool = False) -> int:
    """Open a pass, or resume the active one; returns its id."""
    with rt.session() as s:
        p, created = passes.begin_pass(s, trigger, no_summaries)
        pass_id = p.id
        work = [(names.FETCH_PASS, {"pass_id": pass_id})] if created else passes.pending_work(s, p)
    if not created:
        log.info("pass %d already active (%s); resuming it", pass_id, p.status)
    for task, kwargs in work:
        rt.dispatch(task, **kwargs)
    return pass_id


def sweep(rt) -> int:
    """Re-enqueue work of the active pass untouched for `sweep.stuck_after_seconds`."""
    older = utcnow() - dt.timedelta(seconds=rt.config.sweep.stuck_after_seconds)
    with rt.session() as s:
        p = passes.active_pass(s)
        work = passes.pending_work(s, p, older_than=older) if p else []
        if p and work:
            ids = [kw["paper_id"] for t, kw in work if "paper_id" in kw]
            for t, kw in work:
                ids.extend(kw.get("paper_ids", []))
            if ids:
                passes.touch_items(s, p.id, ids)
    for task, kwargs in work:
        rt.dispatch(task, **kwargs)
    if work:
        log.info("sweep: re-enqueued %d messages for pass %d", len(work), p.id)
    return len(work)

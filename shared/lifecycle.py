"""Driving passes from outside the stages: opening (or resuming) one, and the sweep.

start_pass: open a pass (or find the running one: one pass at a time) and send its next step. A
  pass that is already active is resumed: everything it still needs is sent again at once
  (messages may have been lost with Redis, which keeps nothing on disk); handlers are idempotent,
  so a message that still exists elsewhere only costs a no-op.
sweep: one look at every stage (shared.watches) for work nobody is doing: work of a worker known
  dead (shared.liveness) is re-sent at once, lost work (no message anywhere) once untouched for
  `sweep.stuck_after_seconds`; work queued in Redis or held by a live process is left alone
  (docs/ARCHITECTURE.md "Recovery"). Run by beat, idle workers and `trigger --wait`, at most once
  per `sweep.interval_seconds` for the whole cluster (a Redis lock).
start_pass is used by beat's task (on the fetch queue), `arxiv-bot trigger` and `arxiv-bot run`.
"""
from __future__ import annotations

import datetime as dt
import logging
import time

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


LOCK = "arxiv-bot:sweep-lock"


def sweep(rt, force: bool = False) -> int:
    """One look at every stage (shared.watches) for work nobody is doing; returns how many
    messages were sent. Unfinished work is left alone when its message waits in a queue, when a
    live process holds it (running it, or keeping it until its countdown), or when its lease is
    live; work whose lease owner is known dead is freed and re-sent at once; work with no message
    anywhere and untouched for `sweep.stuck_after_seconds` (a message lost with Redis) is re-sent.
    Unless `force`d it runs only if no other sweep ran in the last `sweep.interval_seconds` (a
    Redis lock): beat, idle workers and `trigger --wait` together cost one sweep per interval."""
    from . import liveness
    from .queued import queued_units

    redis = liveness.redis_client(rt.settings.redis_url)

    def look():
        """Units with a message somewhere: queued, or held by a live process; and the verdict."""
        verdict = liveness.Verdict(redis)
        units = (queued_units(redis) if redis is not None else set()) | verdict.held()
        # A message without a language (sent by hand) stands for the paper in any language.
        return units | {u.rsplit(":", 1)[0] for u in units if u.startswith("summarize:") and u.endswith(":None")}, verdict

    try:
        if redis is not None and not force:
            ttl = max(1, int(rt.config.sweep.interval_seconds * 1000 * 0.9))
            if not redis.set(LOCK, liveness.process_id(), nx=True, px=ttl):
                return 0
        return _sweep(rt, look)
    finally:
        if redis is not None:
            redis.close()


def _sweep(rt, look) -> int:
    from .watches import WATCHES, touch

    # Two looks, before and after the database's: a message moving from a queue into a worker
    # (popped, not yet published as held) is seen by one of them. A unit finished meanwhile is
    # simply no longer unfinished.
    present, verdict = look()
    looked_again = False

    def is_present(key: str) -> bool:
        return key in present or (key.startswith("summarize:") and key.rsplit(":", 1)[0] in present)

    now = utcnow()
    grace = now - dt.timedelta(seconds=rt.config.sweep.stuck_after_seconds)
    sent, notes = [], []
    with rt.session() as s:
        p = passes.active_pass(s)
        for watch in WATCHES:
            if watch.stage != "deliver" and (p is None or p.status != watch.stage):
                continue
            units = watch.find(s, p)
            if not looked_again and any(not is_present(u.key) for u in units):
                time.sleep(0.2)  # a message popped from a queue is published as held within ms
                again, verdict = look()
                present |= again
                looked_again = True
            dead, lost, chosen = [], [], []  # chosen: both, in the watch's order
            for u in units:
                if is_present(u.key):
                    continue  # queued and waiting, or held by a live process
                if u.owner is not None:
                    if u.expires is None or u.expires <= now or verdict.dead(u.owner):
                        dead.append(u)  # in flight in a dead process (known dead, or its lease ran out)
                        chosen.append(u)
                    continue  # a live lease (or an owner not known dead: its expiry decides)
                if u.touched <= grace:
                    lost.append(u)  # no message anywhere
                    chosen.append(u)
            if not units and watch.closing is not None:
                nudge = watch.closing(s, p)
                if nudge is not None:
                    unit, work = nudge
                    if unit is None or (not is_present(unit.key) and unit.touched <= grace):
                        if unit is not None:
                            touch(s, p, work)
                        sent += work
                        notes.append(f"{p.status}: closed" if unit is None else f"{p.status}: nudged")
                continue
            watch.free(s, dead)
            work = watch.resend(s, p, chosen)
            if work:
                touch(s, p, work)
                sent += work
                where = f"pass {p.id} ({watch.stage})" if watch.stage != "deliver" else "deliveries"
                notes.append(f"{where}: re-enqueued {len(work)} messages ({len(dead)} from dead workers, "
                             f"{len(lost)} lost)")
    rt.send_all(sent)
    for note in notes:
        log.info("sweep: %s", note)
    return len(sent)

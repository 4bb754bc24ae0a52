"""What the sweep watches: one Watch per stage, each finding its unfinished units in one indexed query.

A Watch answers, for the active pass (or, for deliveries, any pass):
- `find`: every unfinished unit (shared.queued names them), with when it was last touched and,
  for leased work (fetch claims, summaries, deliveries), its lease owner and expiry;
- `free`: give up the leases of owners known to be dead, so the re-sent message is taken at once;
- `resend`: the messages that ask for a list of units again;
- `closing`: with nothing unfinished, the nudge (or the database-only close) that moves the pass
  on, for a stage that is complete but was never closed (its last worker died at that moment).
The decision (queued, held, live lease, dead owner, lost) is taken in shared.lifecycle.sweep.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from . import names, outbox, passes
from .models import (DELIVERY_PENDING, DELIVERY_SENDING, PASS_FETCHING, PASS_PUBLISHING, PASS_SCORING,
                     PASS_SUMMARIZING, SUM_PENDING, SUMMARY_LEASED, Delivery, Pass, PassProfile, Summary, SummaryJob,
                     utcnow)

Work = passes.Work


@dataclass
class Unit:
    key: str                            # shared.queued unit name
    touched: dt.datetime                # last sent or worked on
    owner: str | None = None            # lease owner, when leased
    expires: dt.datetime | None = None  # lease expiry
    ref: object = None                  # what `resend`/`free` need (profile slug, job key, row id)


@dataclass(frozen=True)
class Watch:
    stage: str                                                  # pass status, or "deliver"
    find: Callable[[Session, Pass | None], list[Unit]]
    resend: Callable[[Session, Pass | None, list[Unit]], Work]
    free: Callable[[Session, list[Unit]], None] = lambda s, units: None
    closing: Callable[[Session, Pass], tuple[Unit, Work] | None] = lambda s, p: None


# -- fetch -----------------------------------------------------------------------------------------

def _fetch_find(s: Session, p: Pass) -> list[Unit]:
    return [Unit(f"fetch:{p.id}", p.updated_at, p.fetch_owner, p.fetch_lease_expires_at)]


def _fetch_free(s: Session, units: list[Unit]) -> None:
    for u in units:
        if u.owner:
            s.execute(update(Pass).where(Pass.id == int(u.key.split(":")[1]), Pass.fetch_owner == u.owner)
                      .values(fetch_owner=None, fetch_lease_expires_at=None).execution_options(synchronize_session=False))


# -- profiles (scoring, publishing) ---------------------------------------------------------------

def _profiles_watch(stage: str, task: str, done_column, batch: int) -> Watch:
    prefix = "score" if task == names.SCORE_PROFILES else "publish"

    def find(s: Session, p: Pass) -> list[Unit]:
        rows = s.execute(select(PassProfile.profile, PassProfile.updated_at)
                         .where(PassProfile.pass_id == p.id, done_column.is_(False))).all()
        return [Unit(f"{prefix}:{p.id}:{slug}", at, ref=slug) for slug, at in rows]

    def resend(s: Session, p: Pass, units: list[Unit]) -> Work:
        return passes._batches(task, p.id, sorted(u.ref for u in units if u.ref), batch)

    def closing(s: Session, p: Pass):
        # Every profile done but the stage never moved on: a worker of the stage closes it.
        return Unit(f"{prefix}:{p.id}:", p.updated_at), [(task, {"pass_id": p.id, "profiles": []})]

    return Watch(stage, find, resend, closing=closing)


# -- summaries -------------------------------------------------------------------------------------

def _summary_find(s: Session, p: Pass) -> list[Unit]:
    lease = and_(Summary.paper_id == SummaryJob.paper_id, Summary.version == SummaryJob.version,
                 Summary.language == SummaryJob.language, Summary.status == SUMMARY_LEASED)
    rows = s.execute(select(SummaryJob.paper_id, SummaryJob.language, SummaryJob.updated_at, Summary.id,
                            Summary.lease_owner, Summary.lease_expires_at)
                     .outerjoin(Summary, lease)
                     .where(SummaryJob.pass_id == p.id, SummaryJob.state == SUM_PENDING)
                     .order_by(SummaryJob.priority, SummaryJob.paper_id)).all()
    return [Unit(f"summarize:{p.id}:{pid}:{lang}", at, owner, expires, ref=(pid, lang, sid))
            for pid, lang, at, sid, owner, expires in rows]


def _summary_free(s: Session, units: list[Unit]) -> None:
    for u in units:
        if u.owner and u.ref[2] is not None:
            # Expired and ownerless now, so the re-sent message takes it over at once
            # (summarizer/lease.py counts the dead owner's call in flight).
            s.execute(update(Summary).where(Summary.id == u.ref[2], Summary.lease_owner == u.owner,
                                            Summary.status == SUMMARY_LEASED)
                      .values(lease_owner=None, lease_expires_at=utcnow()).execution_options(synchronize_session=False))


def _summary_resend(s: Session, p: Pass, units: list[Unit]) -> Work:
    return [(names.SUMMARIZE_PAPER, {"pass_id": p.id, "paper_id": u.ref[0], "language": u.ref[1]}) for u in units]


def _summary_closing(s: Session, p: Pass):
    work = passes.close_summarizing(s, p.id)  # decided in the database: no message needed
    return (None, work) if work else None


# -- deliveries ------------------------------------------------------------------------------------

def _delivery_find(s: Session, p: Pass | None) -> list[Unit]:
    rows = s.execute(select(Delivery.id, Delivery.channel_key, Delivery.status, Delivery.updated_at,
                            Delivery.lease_owner, Delivery.lease_expires_at, Delivery.not_before)
                     .where(Delivery.status.in_([DELIVERY_PENDING, DELIVERY_SENDING]))).all()
    now = utcnow()
    return [Unit(f"deliver:{i}", at, owner if status == DELIVERY_SENDING else None, expires, ref=(i, key))
            for i, key, status, at, owner, expires, not_before in rows
            if status == DELIVERY_SENDING or not_before is None or not_before <= now]


def _delivery_free(s: Session, units: list[Unit]) -> None:
    for u in units:
        if u.owner:
            s.execute(update(Delivery).where(Delivery.id == u.ref[0], Delivery.lease_owner == u.owner,
                                             Delivery.status == DELIVERY_SENDING)
                      .values(status=DELIVERY_PENDING, lease_owner=None, lease_expires_at=None,
                              error="the worker sending it stopped before the server answered")
                      .execution_options(synchronize_session=False))


def _delivery_resend(s: Session, p, units: list[Unit]) -> Work:
    return [(names.DELIVER, {"delivery_ids": ids}) for ids in outbox.batches(sorted(u.ref for u in units))]


WATCHES = [
    Watch(PASS_FETCHING, _fetch_find, lambda s, p, units: [(names.FETCH_PASS, {"pass_id": p.id})] if units else [],
          free=_fetch_free),
    _profiles_watch(PASS_SCORING, names.SCORE_PROFILES, PassProfile.scored, passes.SCORE_BATCH),
    Watch(PASS_SUMMARIZING, _summary_find, _summary_resend, free=_summary_free, closing=_summary_closing),
    _profiles_watch(PASS_PUBLISHING, names.PUBLISH_PROFILES, PassProfile.published, passes.PUBLISH_BATCH),
    Watch("deliver", _delivery_find, _delivery_resend, free=_delivery_free),
]


def touch(s: Session, p: Pass | None, work: Work) -> None:
    """Mark what `work` re-sends as just sent (the sweep leaves it alone for the grace period)."""
    deliveries = [i for task, kw in work if task == names.DELIVER for i in kw["delivery_ids"]]
    for i in range(0, len(deliveries), 1000):
        s.execute(update(Delivery).where(Delivery.id.in_(deliveries[i:i + 1000])).values(updated_at=utcnow())
                  .execution_options(synchronize_session=False))
    rest = [(task, kw) for task, kw in work if task != names.DELIVER]
    if p is not None and rest:
        passes.touch(s, p.id, rest)

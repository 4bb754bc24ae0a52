"""The pass: its states and every transition between them, in one place (the orchestrator).

    begin ──> fetching ──fetched──> scoring ──close_scoring──> summarizing ──close_summarizing──> publishing
                 │  └─no_announcement─> empty                    (selection runs             │
                 └─fetch_failed─> failed                          inside the flip)           └─published─> published

Stages do their work and ask this module what comes next. Every transition takes the session of
the caller's transaction, is decided in the database (a conditional UPDATE of passes.status:
exactly one caller wins however many processes race, and the winner's follow-up step commits or
rolls back with the flip), and returns the messages to send AFTER commit as (task, kwargs)
pairs (`rt.send_all(work)`). A stage closes when the database shows nothing of it pending; the
same close functions serve the stage's own last worker and `pending_work` (resume and sweep), so
"count what is pending, advance, enqueue" is written once per stage.

One pass at a time: `passes.active` is 1 while a pass is not terminal, under a unique index.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import names
from .models import (PASS_EMPTY, PASS_FAILED, PASS_FETCHING, PASS_PUBLISHED, PASS_PUBLISHING, PASS_SCORING,
                     PASS_SUMMARIZING, PASS_TERMINAL, SUM_PENDING, SUMMARY_LEASED, Pass, PassItem, Summary, utcnow)

SCORE_BATCH_SIZE = 500
Work = list[tuple[str, dict]]


def summaries_off_reason(config, settings, p: Pass) -> str | None:
    """Why this pass makes no LLM calls (shown in the run output and the digest), or None."""
    if p.no_summaries:
        return "AI summaries turned off for this run (--no-summaries)"
    if not config.ai_summary.enabled:
        return "AI summaries disabled in config.json (ai_summary.enabled is false)"
    if not settings.llm_enabled:
        return f"AI summaries disabled: set {settings.llm_key_env}"
    return None


def active_pass(session: Session) -> Pass | None:
    return session.scalars(select(Pass).where(Pass.active == 1)).first()


# -- transitions ---------------------------------------------------------------------------------

def begin(session: Session, trigger: str, no_summaries: bool = False) -> tuple[Pass, bool, Work]:
    """Open a pass, or return the active one (two triggers at once get one pass: the unique
    active slot). Returns (pass, created, work): a new pass's fetch, or everything an unfinished
    pass still needs (messages may have been lost with Redis; handlers ignore duplicates)."""
    existing = active_pass(session)
    if existing is None:
        try:
            with session.begin_nested():
                new = Pass(status=PASS_FETCHING, active=1, trigger=trigger, no_summaries=no_summaries)
                session.add(new)
                session.flush()
            return new, True, [(names.FETCH_PASS, {"pass_id": new.id})]
        except IntegrityError:  # another trigger won the race for the active slot
            existing = active_pass(session)
            if existing is None:
                raise
    return existing, False, pending_work(session, existing)


def fetched(session: Session, pass_id: int, paper_ids: list[str], **values) -> Work:
    """fetching -> scoring once the day is stored; the score batches to send."""
    if not advance(session, pass_id, PASS_FETCHING, PASS_SCORING, fetched=len(paper_ids), **values):
        return []
    return score_batches(pass_id, paper_ids)


def no_announcement(session: Session, pass_id: int, day: str) -> bool:
    """fetching -> empty: a weekend or holiday; the previous digest stays in place."""
    return finish(session, pass_id, PASS_EMPTY, from_status=PASS_FETCHING, note=f"no announcement ({day})")


def fetch_failed(session: Session, pass_id: int, reason: str) -> bool:
    """fetching -> failed (the next trigger starts afresh)."""
    return finish(session, pass_id, PASS_FAILED, from_status=PASS_FETCHING, error=reason)


def close_scoring(session: Session, pass_id: int, select_digest: Callable[[Session, Pass], list[str]]) -> Work:
    """scoring -> summarizing when every item is scored. The one winner runs `select_digest`
    (the scorer's selection, returning the paper ids to summarize) in the same transaction;
    with nothing to summarize the pass goes straight on to publishing."""
    if _count(session, PassItem.pass_id == pass_id, PassItem.scored.is_(False)):
        return []
    if not advance(session, pass_id, PASS_SCORING, PASS_SUMMARIZING):
        return []  # another scorer process won; it does the selection
    to_summarize = select_digest(session, session.get(Pass, pass_id))
    if to_summarize:
        return [(names.SUMMARIZE_PAPER, {"pass_id": pass_id, "paper_id": pid}) for pid in to_summarize]
    return close_summarizing(session, pass_id)


def close_summarizing(session: Session, pass_id: int) -> Work:
    """summarizing -> publishing when no summary of the pass is pending."""
    if _count(session, PassItem.pass_id == pass_id, PassItem.summary_state == SUM_PENDING):
        return []
    if advance(session, pass_id, PASS_SUMMARIZING, PASS_PUBLISHING):
        return [(names.PUBLISH_PASS, {"pass_id": pass_id})]
    return []


def claim_publishing(session: Session, pass_id: int) -> bool:
    """Lock the publishing pass's row for the caller's transaction: a second publisher
    (redelivery, sweep) waits on the row lock and then finds the pass published."""
    return bool(session.execute(update(Pass).where(Pass.id == pass_id, Pass.status == PASS_PUBLISHING)
                                .values(updated_at=utcnow()).execution_options(synchronize_session=False))
                .rowcount)


def published(session: Session, pass_id: int) -> bool:
    """publishing -> published (terminal; frees the active slot)."""
    return finish(session, pass_id, PASS_PUBLISHED, from_status=PASS_PUBLISHING)


# -- what an unfinished pass still needs ---------------------------------------------------------

def pending_work(session: Session, p: Pass, older_than: dt.datetime | None = None) -> Work:
    """The messages that move an unfinished pass on (empty for a finished pass).

    Without `older_than` (resuming: `arxiv-bot run`/`trigger`, beat's start_pass): everything
    not done, at once; every handler re-reads its rows, so a message that still exists
    somewhere only costs a no-op. With `older_than` (the sweep): only work untouched since then,
    and never a summary whose lease is live (a worker is calling the provider right now).
    May close a stage that is complete but was never moved on (the caller commits, then sends)."""
    if p.status in PASS_TERMINAL:
        return []
    recent = older_than is not None and p.updated_at > older_than
    if p.status == PASS_FETCHING:
        return [] if recent else [(names.FETCH_PASS, {"pass_id": p.id})]
    if p.status == PASS_PUBLISHING:
        return [] if recent else [(names.PUBLISH_PASS, {"pass_id": p.id})]
    if p.status == PASS_SCORING:
        unscored = (PassItem.pass_id == p.id, PassItem.scored.is_(False))
        ids = _item_ids(session, unscored, older_than)
        if ids:
            return score_batches(p.id, ids)
        if _count(session, *unscored) or recent:
            return []  # in progress, or scored just now and the selection is probably running
        # Everything scored but the selection never ran (its process died): nudge the scorer.
        return [(names.SCORE_BATCH, {"pass_id": p.id, "paper_ids": []})]
    if p.status == PASS_SUMMARIZING:
        pending = (PassItem.pass_id == p.id, PassItem.summary_state == SUM_PENDING)
        extra = ()
        if older_than is not None:
            live = (select(Summary.id).where(Summary.paper_id == PassItem.paper_id, Summary.version == PassItem.version,
                                             Summary.status == SUMMARY_LEASED, Summary.lease_expires_at > utcnow())
                    .correlate(PassItem).exists())
            extra = (~live,)
        ids = _item_ids(session, (*pending, *extra), older_than, order=(PassItem.rank, PassItem.paper_id))
        if ids:
            return [(names.SUMMARIZE_PAPER, {"pass_id": p.id, "paper_id": i}) for i in ids]
        return close_summarizing(session, p.id)  # a no-op while some are in flight
    return []


# -- helpers -------------------------------------------------------------------------------------

def advance(session: Session, pass_id: int, from_status: str, to_status: str, **values) -> bool:
    """Move the pass from one status to the next; True for exactly one caller."""
    result = session.execute(
        update(Pass).where(Pass.id == pass_id, Pass.status == from_status)
        .values(status=to_status, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def finish(session: Session, pass_id: int, status: str, *, from_status: str | None = None,
           note: str | None = None, error: str | None = None) -> bool:
    """Terminal state; frees the active slot."""
    assert status in PASS_TERMINAL
    stmt = update(Pass).where(Pass.id == pass_id, Pass.active == 1)
    if from_status:
        stmt = stmt.where(Pass.status == from_status)
    values = dict(status=status, active=None, finished_at=utcnow(), updated_at=utcnow())
    if note is not None:
        values["note"] = note
    if error is not None:
        values["error"] = error[:2000]
    return session.execute(stmt.values(**values).execution_options(synchronize_session=False)).rowcount == 1


def score_batches(pass_id: int, paper_ids: list[str]) -> Work:
    return [(names.SCORE_BATCH, {"pass_id": pass_id, "paper_ids": paper_ids[i:i + SCORE_BATCH_SIZE]})
            for i in range(0, len(paper_ids), SCORE_BATCH_SIZE)]


def _count(session: Session, *where) -> int:
    return int(session.scalar(select(func.count()).select_from(PassItem).where(*where)) or 0)


def _item_ids(session: Session, where, older_than, order=(PassItem.paper_id,)) -> list[str]:
    q = select(PassItem.paper_id).where(*where)
    if older_than is not None:
        q = q.where(PassItem.updated_at <= older_than)
    return list(session.scalars(q.order_by(*order)))


def touch_items(session: Session, pass_id: int, paper_ids: list[str]) -> None:
    """Mark items as recently handled so the sweep leaves them alone for a while."""
    for i in range(0, len(paper_ids), 1000):  # bounded IN lists (15,000-item days)
        session.execute(update(PassItem).where(PassItem.pass_id == pass_id,
                                               PassItem.paper_id.in_(paper_ids[i:i + 1000]))
                        .values(updated_at=utcnow()).execution_options(synchronize_session=False))


def touch_pass(session: Session, pass_id: int) -> None:
    """Mark the pass as recently nudged: the sweep re-sends a pass-level message (fetch,
    publish, selection nudge) at most once per `stuck_after_seconds`, not on every run."""
    session.execute(update(Pass).where(Pass.id == pass_id, Pass.active == 1).values(updated_at=utcnow())
                    .execution_options(synchronize_session=False))

"""The pass lifecycle, decided in the database so every process agrees.

- `begin_pass`: opens a pass unless one is active (the unique `passes.active` column makes two
  triggers at once produce one pass); returns the active pass either way.
- `advance`: a conditional UPDATE (status = from -> to). Exactly one caller wins it, however
  many processes race, and that caller does the step (selection, publishing) in the same
  transaction, so a crash mid-step rolls the flip back too.
- `finish`: terminal state; frees the active slot.
- `pending_work`: what must be (re-)enqueued for an unfinished pass: used to resume a pass
  (`arxiv-bot run`/`trigger`) and by the periodic sweep after lost messages.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import names
from .models import (PASS_FETCHING, PASS_PUBLISHING, PASS_SCORING, PASS_SUMMARIZING, PASS_TERMINAL,
                     SUM_PENDING, Pass, PassItem, Summary, utcnow)

SCORE_BATCH_SIZE = 500


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


def begin_pass(session: Session, trigger: str, no_summaries: bool = False) -> tuple[Pass, bool]:
    """Return (pass, created). A concurrent or unfinished pass is returned instead of a new one."""
    existing = active_pass(session)
    if existing is not None:
        return existing, False
    try:
        with session.begin_nested():
            new = Pass(status=PASS_FETCHING, active=1, trigger=trigger, no_summaries=no_summaries)
            session.add(new)
            session.flush()
    except IntegrityError:  # another trigger won the race for the active slot
        existing = active_pass(session)
        if existing is None:
            raise
        return existing, False
    return new, True


def advance(session: Session, pass_id: int, from_status: str, to_status: str, **values) -> bool:
    """Move the pass from one status to the next; True for exactly one caller."""
    result = session.execute(
        update(Pass).where(Pass.id == pass_id, Pass.status == from_status)
        .values(status=to_status, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def finish(session: Session, pass_id: int, status: str, *, from_status: str | None = None,
           note: str | None = None, error: str | None = None) -> bool:
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


def pending_work(session: Session, p: Pass, older_than: dt.datetime | None = None) -> list[tuple[str, dict]]:
    """The messages that move an unfinished pass on (empty for a finished pass).

    Without `older_than` (resuming: `arxiv-bot run`/`trigger`, beat's start_pass): everything
    not done, at once; every handler re-reads its rows, so a message that still exists
    somewhere only costs a no-op. With `older_than` (the sweep): only work untouched since then,
    and never a summary whose lease is live (a worker is calling the provider right now); a
    killed summarizer's lease expires and its paper comes back with the next sweep.
    May advance a pass whose stage is complete but was never moved on (the caller commits,
    then sends)."""
    if p.status in PASS_TERMINAL:
        return []
    if older_than is not None and p.updated_at > older_than and p.status in (PASS_FETCHING, PASS_PUBLISHING):
        return []
    if p.status == PASS_FETCHING:
        return [(names.FETCH_PASS, {"pass_id": p.id})]
    if p.status == PASS_SCORING:
        return _scoring_work(session, p, older_than)
    if p.status == PASS_SUMMARIZING:
        return _summarizing_work(session, p, older_than)
    if p.status == PASS_PUBLISHING:
        return [(names.PUBLISH_PASS, {"pass_id": p.id})]
    return []


def _count(session: Session, *where) -> int:
    return int(session.scalar(select(func.count()).select_from(PassItem).where(*where)) or 0)


def _scoring_work(session: Session, p: Pass, older_than: dt.datetime | None) -> list[tuple[str, dict]]:
    unscored = (PassItem.pass_id == p.id, PassItem.scored.is_(False))
    q = select(PassItem.paper_id).where(*unscored)
    if older_than is not None:
        q = q.where(PassItem.updated_at <= older_than)
    ids = list(session.scalars(q.order_by(PassItem.paper_id)))
    if ids:
        return score_batches(p.id, ids)
    if _count(session, *unscored):
        return []  # unscored items exist but were handled recently: in progress
    if older_than is not None and p.updated_at > older_than:
        return []  # scored just now; the selection is probably running
    # Everything scored but the selection never ran (its process died): one nudge.
    return [(names.SCORE_BATCH, {"pass_id": p.id, "paper_ids": []})]


def _summarizing_work(session: Session, p: Pass, older_than: dt.datetime | None) -> list[tuple[str, dict]]:
    pending = (PassItem.pass_id == p.id, PassItem.summary_state == SUM_PENDING)
    q = select(PassItem.paper_id).where(*pending)
    if older_than is not None:
        now = utcnow()
        live = (select(Summary.id).where(Summary.paper_id == PassItem.paper_id, Summary.version == PassItem.version,
                                         Summary.status == "leased", Summary.lease_expires_at > now)
                .correlate(PassItem).exists())
        q = q.where(PassItem.updated_at <= older_than, ~live)
    ids = list(session.scalars(q.order_by(PassItem.rank, PassItem.paper_id)))
    if ids:
        return [(names.SUMMARIZE_PAPER, {"pass_id": p.id, "paper_id": i}) for i in ids]
    if _count(session, *pending):
        return []  # being summarized (live lease) or retried recently
    # Every summary is settled but the process that should flip the pass died.
    if advance(session, p.id, PASS_SUMMARIZING, PASS_PUBLISHING):
        return [(names.PUBLISH_PASS, {"pass_id": p.id})]
    return []


def score_batches(pass_id: int, paper_ids: list[str]) -> list[tuple[str, dict]]:
    return [(names.SCORE_BATCH, {"pass_id": pass_id, "paper_ids": paper_ids[i:i + SCORE_BATCH_SIZE]})
            for i in range(0, len(paper_ids), SCORE_BATCH_SIZE)]


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


"""The pass: its states and every transition between them, in one place (the orchestrator).

    begin ──> fetching ──fetched──> scoring ──close_scoring──> summarizing ──close_summarizing──> publishing
                 │  └─no_announcement─> empty                    (summaries planned               │
                 └─fetch_failed─> failed                          inside the flip)   close_publishing┘──> published
                                                                                           deliver (per profile, outbox)

Stages do their work and ask this module what comes next. Every transition takes the session of
the caller's transaction, is decided in the database (a conditional UPDATE of passes.status:
exactly one caller wins however many processes race, and the winner's follow-up step commits or
rolls back with the flip), and returns the messages to send AFTER commit as (task, kwargs)
pairs (`rt.send_all(work)`). A stage closes when the database shows nothing of it pending; the
same close functions serve the stage's own last worker, `pending_work` (the resume) and the
sweep's watches (shared.watches).

Delivery is not a pass state: a published profile's digest is delivered on its own queue
(`deliver`: outbox rows written in the publishing transaction), so slow mail never keeps a pass
open; `pending_deliveries` is what a resume re-sends of it.

The units of work: scoring and publishing go by profile (pass_profiles, batched per message),
summarizing by summary job (summary_jobs: a paper in one language, shared by every profile
that picked it). One pass at a time: `passes.active` is 1 while a pass is not terminal, under a
unique index.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import names, outbox
from .models import (PASS_EMPTY, PASS_FAILED, PASS_FETCHING, PASS_PUBLISHED, PASS_PUBLISHING, PASS_SCORING,
                     PASS_SUMMARIZING, PASS_TERMINAL, SUM_PENDING, Pass, PassProfile, SummaryJob, utcnow)

SCORE_BATCH = 200    # profiles per scoring message (the day's index is built once per process)
PUBLISH_BATCH = 50   # profiles per publishing message (six files each)
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

def begin(session: Session, trigger: str, no_summaries: bool) -> tuple[Pass, bool, Work]:
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


def fetched(session: Session, pass_id: int, papers: int, profiles: list[str], **values) -> Work:
    """fetching -> scoring once the day is stored: every profile gets its row; the scoring
    messages to send (profiles in batches)."""
    if not advance(session, pass_id, PASS_FETCHING, PASS_SCORING, fetched=papers, **values):
        return []
    # A row starts unscored, unpublished, with no candidates (the model's defaults).
    session.add_all(PassProfile(pass_id=pass_id, profile=slug) for slug in profiles)
    return _batches(names.SCORE_PROFILES, pass_id, profiles, SCORE_BATCH)


def claim_fetch(session: Session, pass_id: int, owner: str, lease_seconds: float, dead_owner: str | None = None) -> bool:
    """Take the pass's fetch for `owner` (committed by the caller before downloading): True for
    exactly one caller while the pass is fetching and its claim is free, expired, or held by
    `dead_owner` (known dead: shared.liveness). Two fetchers given the same message never both
    download the day; the winner's heartbeat renews the claim (`renew_fetch`)."""
    now = utcnow()
    free = [Pass.fetch_owner.is_(None), Pass.fetch_lease_expires_at < now]
    if dead_owner:
        free.append(Pass.fetch_owner == dead_owner)
    return session.execute(update(Pass).where(Pass.id == pass_id, Pass.status == PASS_FETCHING, or_(*free))
                           .values(fetch_owner=owner, fetch_lease_expires_at=now + dt.timedelta(seconds=lease_seconds))
                           .execution_options(synchronize_session=False)).rowcount == 1


def renew_fetch(session: Session, pass_id: int, owner: str, lease_seconds: float | None) -> None:
    """Extend our fetch claim (lease_seconds) or give it up (None)."""
    values = (dict(fetch_lease_expires_at=utcnow() + dt.timedelta(seconds=lease_seconds)) if lease_seconds
              else dict(fetch_owner=None, fetch_lease_expires_at=None))
    session.execute(update(Pass).where(Pass.id == pass_id, Pass.fetch_owner == owner).values(**values)
                    .execution_options(synchronize_session=False))


def no_announcement(session: Session, pass_id: int, day: str) -> bool:
    """fetching -> empty: a weekend or holiday; the previous digests stay in place."""
    return finish(session, pass_id, PASS_EMPTY, from_status=PASS_FETCHING, note=f"no announcement ({day})")


def fetch_failed(session: Session, pass_id: int, reason: str) -> bool:
    """fetching -> failed (the next trigger starts afresh)."""
    return finish(session, pass_id, PASS_FAILED, from_status=PASS_FETCHING, error=reason)


def close_scoring(session: Session, pass_id: int, plan: Callable[[Session, Pass], list[tuple[str, str]]]) -> Work:
    """scoring -> summarizing when every profile is scored. The one winner runs `plan` (the
    scorer's summary planning: the (paper id, language) jobs to run) in the same transaction;
    with nothing to summarize the pass goes straight on to publishing."""
    if _count(PassProfile, session, PassProfile.pass_id == pass_id, PassProfile.scored.is_(False)):
        return []
    if not advance(session, pass_id, PASS_SCORING, PASS_SUMMARIZING):
        return []  # another scorer process won; it plans the summaries
    jobs = plan(session, session.get(Pass, pass_id))
    if jobs:
        return [(names.SUMMARIZE_PAPER, {"pass_id": pass_id, "paper_id": pid, "language": lang})
                for pid, lang in jobs]
    return close_summarizing(session, pass_id)


def close_summarizing(session: Session, pass_id: int) -> Work:
    """summarizing -> publishing when no summary of the pass is pending; every profile's
    publication to send (in batches)."""
    if _count(SummaryJob, session, SummaryJob.pass_id == pass_id, SummaryJob.state == SUM_PENDING):
        return []
    if not advance(session, pass_id, PASS_SUMMARIZING, PASS_PUBLISHING):
        return []
    # Every profile: none is published before this flip (claim_publishing needs a publishing pass).
    return _batches(names.PUBLISH_PROFILES, pass_id, _profiles(session, pass_id), PUBLISH_BATCH)


def claim_publishing(session: Session, pass_id: int, profiles: list[str]) -> list[str]:
    """Of `profiles`, those the caller publishes now: unpublished ones of a publishing pass, their
    rows locked for the caller's transaction (a second publisher of the same batch waits, then
    finds them published)."""
    if session.scalar(select(Pass.status).where(Pass.id == pass_id)) != PASS_PUBLISHING:
        return []
    return list(session.scalars(update(PassProfile).where(
        PassProfile.pass_id == pass_id, PassProfile.profile.in_(profiles), PassProfile.published.is_(False))
        .values(updated_at=utcnow()).returning(PassProfile.profile)))


def profile_published(session: Session, pass_id: int, profile: str) -> None:
    session.execute(update(PassProfile).where(PassProfile.pass_id == pass_id, PassProfile.profile == profile)
                    .values(published=True, updated_at=utcnow()))


def close_publishing(session: Session, pass_id: int) -> bool:
    """publishing -> published (terminal; frees the active slot) when every profile is
    published; True for exactly one caller."""
    if _count(PassProfile, session, PassProfile.pass_id == pass_id, PassProfile.published.is_(False)):
        return False
    return finish(session, pass_id, PASS_PUBLISHED, from_status=PASS_PUBLISHING)


def deliver(session: Session, p: Pass, profile) -> Work:
    """A profile published -> its deliveries: the outbox rows (one per channel and recipient the
    day has none for yet), written in the caller's publishing transaction; the deliver
    messages to send after commit (a batch per channel)."""
    rows = outbox.plan(session, p.id, p.day, profile, papers=session.get(PassProfile, (p.id, profile.slug)).selected)
    return _deliveries(rows)


def pending_deliveries(session: Session) -> Work:
    """The deliver messages that finish what the outbox still holds, for a resume: pending rows
    and rows whose worker died (lease expired), of any pass. (The sweep's finer rules are
    shared.watches'.)"""
    return _deliveries(outbox.unfinished(session))


def _deliveries(rows: list[tuple[int, str]]) -> Work:
    return [(names.DELIVER, {"delivery_ids": ids}) for ids in outbox.batches(rows)]


# -- what an unfinished pass still needs ---------------------------------------------------------

def pending_work(session: Session, p: Pass) -> Work:
    """The messages that move an unfinished pass on (empty for a finished pass), for resuming it
    (`arxiv-bot run`/`trigger`, beat's start_pass): everything not done, at once, leases or not;
    every handler re-reads its rows, so a message that still exists somewhere only costs a no-op.
    (The sweep's finer rules, ages, leases and live holders, are shared.watches'.) May close a
    summarizing stage that is complete but was never moved on (the caller commits, then sends)."""
    if p.status == PASS_FETCHING:
        return [(names.FETCH_PASS, {"pass_id": p.id})]
    if p.status == PASS_SCORING:
        todo = _profiles(session, p.id, PassProfile.scored.is_(False))
        # None left: every profile scored but the planning never ran (its process died).
        return _batches(names.SCORE_PROFILES, p.id, todo, SCORE_BATCH) if todo else \
            [(names.SCORE_PROFILES, {"pass_id": p.id, "profiles": []})]
    if p.status == PASS_SUMMARIZING:
        jobs = session.execute(select(SummaryJob.paper_id, SummaryJob.language)
                               .where(SummaryJob.pass_id == p.id, SummaryJob.state == SUM_PENDING)
                               .order_by(SummaryJob.priority, SummaryJob.paper_id)).all()
        if jobs:
            return [(names.SUMMARIZE_PAPER, {"pass_id": p.id, "paper_id": pid, "language": lang})
                    for pid, lang in jobs]
        return close_summarizing(session, p.id)
    if p.status == PASS_PUBLISHING:
        todo = _profiles(session, p.id, PassProfile.published.is_(False))
        # None left: every profile published but the pass was never closed.
        return _batches(names.PUBLISH_PROFILES, p.id, todo, PUBLISH_BATCH) if todo else \
            [(names.PUBLISH_PROFILES, {"pass_id": p.id, "profiles": []})]
    return []  # finished


def touch(session: Session, pass_id: int, work: Work) -> None:
    """Mark what `work` re-sends as recently handled, so the sweep re-sends it at most once
    per `stuck_after_seconds`, not on every run."""
    now = utcnow()
    profiles = [slug for _, kw in work for slug in kw.get("profiles", ())]
    jobs = [(kw["paper_id"], kw["language"]) for _, kw in work if "paper_id" in kw]
    for i in range(0, len(profiles), 1000):
        session.execute(update(PassProfile).where(PassProfile.pass_id == pass_id,
                                                  PassProfile.profile.in_(profiles[i:i + 1000]))
                        .values(updated_at=now).execution_options(synchronize_session=False))
    for pid, lang in jobs:
        session.execute(update(SummaryJob).where(SummaryJob.pass_id == pass_id, SummaryJob.paper_id == pid,
                                                 SummaryJob.language == lang)
                        .values(updated_at=now).execution_options(synchronize_session=False))
    if any(not kw.get("profiles") and "paper_id" not in kw for _, kw in work):
        session.execute(update(Pass).where(Pass.id == pass_id, Pass.active == 1).values(updated_at=now)
                        .execution_options(synchronize_session=False))


# -- helpers -------------------------------------------------------------------------------------

def advance(session: Session, pass_id: int, from_status: str, to_status: str, **values) -> bool:
    """Move the pass from one status to the next; True for exactly one caller."""
    result = session.execute(
        update(Pass).where(Pass.id == pass_id, Pass.status == from_status)
        .values(status=to_status, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def finish(session: Session, pass_id: int, status: str, *, from_status: str,
           note: str | None = None, error: str | None = None) -> bool:
    """from_status -> a terminal state; frees the active slot."""
    assert status in PASS_TERMINAL
    stmt = update(Pass).where(Pass.id == pass_id, Pass.active == 1, Pass.status == from_status)
    values = dict(status=status, active=None, finished_at=utcnow(), updated_at=utcnow())
    if note is not None:
        values["note"] = note
    if error is not None:
        values["error"] = error[:2000]
    return session.execute(stmt.values(**values).execution_options(synchronize_session=False)).rowcount == 1


def _batches(task: str, pass_id: int, profiles: list[str], size: int) -> Work:
    return [(task, {"pass_id": pass_id, "profiles": profiles[i:i + size]}) for i in range(0, len(profiles), size)]


def _profiles(session: Session, pass_id: int, *where) -> list[str]:
    return list(session.scalars(select(PassProfile.profile).where(PassProfile.pass_id == pass_id, *where)
                                .order_by(PassProfile.profile)))


def _count(model, session: Session, *where) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

"""Scorer stage logic (Celery-free; tasks.py and the embedded runner call these).

score_profiles(pass_id, profiles) scores and selects a batch of profiles against the day's index
(built once per pass and process, dayindex.py), with each profile's interests and ratings (read
for the whole batch in one query; profile_feedback.py: the papers rated "less like this" are
hidden, and with enough ratings a model's points join the keyword score). Each profile is selected exactly once per pass:
the batch claims its unscored profiles (a conditional UPDATE ... RETURNING on pass_profiles) in
the transaction that writes their digests, so a redelivered message or a second scorer replica
finds them scored and writes nothing. After commit it asks shared.passes whether scoring is
complete; the one process that wins the scoring -> summarizing flip plans the summaries for every
profile at once (summary_plan.py) and, after commit, enqueues them (or the publication when
there is nothing to summarize).
"""
from __future__ import annotations

import logging

from sqlalchemy import func, select, update

from shared import feedback, names, passes
from shared.errors import PermanentError
from shared.models import (ITEM_WANTS_SUMMARY, PASS_SCORING, SUM_SKIPPED, Paper, Pass, PassItem, PassProfile,
                           ProfileItem, Publication, utcnow)
from shared.tasking import Handler

from .dayindex import DayIndex, DayPaper
from .profile_feedback import feedback_terms, hidden
from .profile_feedback import profile_model as feedback_model
from .profile_interests import bonuses, profile_model
from .profile_scorer import score_profile
from .selection import Selection, select_profile
from .summary_plan import plan_jobs

log = logging.getLogger(__name__)


def day_index(rt, pass_id: int) -> DayIndex:
    """The pass's papers indexed once per process (every batch of this pass reuses it)."""
    slot = rt.memo("scorer.day", dict)
    if slot.get("pass_id") != pass_id:
        with rt.session() as s:
            rows = s.execute(select(Paper.id, Paper.title, Paper.abstract, Paper.authors, Paper.categories,
                                    PassItem.announce_type, PassItem.version)
                             .join(PassItem, PassItem.paper_id == Paper.id)
                             .where(PassItem.pass_id == pass_id).order_by(Paper.id)).all()
        papers = [DayPaper(r.id, r.title, r.abstract, list(r.authors or []), list(r.categories or []),
                           r.announce_type, r.version) for r in rows]
        slot.clear()
        slot.update(pass_id=pass_id, index=DayIndex.build(papers))
    return slot["index"]


def _score_one(rt, pass_id: int, day: DayIndex, profile, ratings) -> tuple[dict, dict, str | None, frozenset]:
    """(keyword scores, bonus terms, warning, hidden paper ids) of one profile: the bonus holds
    interest similarity and the reader's ratings' model (profile_feedback.py)."""
    scored = score_profile(day, profile, day.eligible(profile.categories, profile.announce_types)[0])
    bonus, warning = {}, None
    if profile.interests.enabled:
        model, warning = profile_model(rt, pass_id, profile)
        try:
            bonus = bonuses(day, profile, model)
        except PermanentError as exc:
            warning = f"interests: {exc}; scoring on keywords only"
            log.warning("pass %d profile %s: %s", pass_id, profile.slug, warning)
    liked = feedback_terms(day, profile, feedback_model(rt, profile, ratings), rt.config.feedback.weight)
    for i, terms in liked.items():
        bonus[i] = [*bonus.get(i, ()), *terms]
    return scored, bonus, warning, hidden(ratings)


def _shown_before(s, slugs: list[str], day) -> dict[str, dict[str, int]]:
    """{profile: {paper id: newest version shown}} of its published digests of days before
    `day` (never twice)."""
    out: dict[str, dict[str, int]] = {slug: {} for slug in slugs}
    if day is None:
        return out
    rows = s.execute(select(ProfileItem.profile, ProfileItem.paper_id, func.max(PassItem.version))
                     .join(Publication, (Publication.pass_id == ProfileItem.pass_id)
                           & (Publication.profile == ProfileItem.profile))
                     .join(PassItem, (PassItem.pass_id == ProfileItem.pass_id)
                           & (PassItem.paper_id == ProfileItem.paper_id))
                     .where(ProfileItem.profile.in_(slugs), Publication.day < day)
                     .group_by(ProfileItem.profile, ProfileItem.paper_id)).all()
    for slug, pid, version in rows:
        out[slug][pid] = version or 0
    return out


def score_profiles(rt, pass_id: int, profiles: list[str]) -> None:
    """Score and select the batch's unscored profiles (see the module docstring)."""
    with rt.session() as s:
        p = s.get(Pass, pass_id)
        if p is None or p.status != PASS_SCORING:
            return
        todo = list(s.scalars(select(PassProfile.profile).where(
            PassProfile.pass_id == pass_id, PassProfile.profile.in_(profiles), PassProfile.scored.is_(False))))
        day_of_pass, off = p.day, passes.summaries_off_reason(rt.config, rt.settings, p)
        ratings = feedback.ratings_of(s, todo)
    if todo:
        readers = rt.readers()
        day = day_index(rt, pass_id)
        results = {slug: _score_one(rt, pass_id, day, readers.get(slug), ratings[slug])
                   for slug in todo if readers.get(slug)}
        with rt.session() as s:
            shown = _shown_before(s, todo, day_of_pass)
            won = s.scalars(update(PassProfile).where(PassProfile.pass_id == pass_id, PassProfile.profile.in_(todo),
                                                      PassProfile.scored.is_(False))
                            .values(scored=True, updated_at=utcnow()).returning(PassProfile.profile)).all()
            for slug in won:
                row = s.get(PassProfile, (pass_id, slug))
                if slug not in results:  # removed from the config mid-pass: an empty digest
                    row.note = "profile no longer configured"
                    continue
                scored, bonus, warning, never = results[slug]
                sel = select_profile(day, readers.get(slug), scored, bonus, shown[slug], never)
                _store(s, pass_id, readers.get(slug), sel, off)
                row.candidates, row.selected, row.note = sel.candidates, len(sel.picks), warning
                if warning and not readers.configured and p.note is None:
                    s.execute(update(Pass).where(Pass.id == pass_id, Pass.note.is_(None)).values(note=warning))
            if won:
                log.info("pass %d: %d profiles scored and selected", pass_id, len(won))
    close_scoring(rt, pass_id)


def _store(s, pass_id: int, profile, sel: Selection, off_reason: str | None) -> None:
    rows = []
    for pick in sel.picks:
        state = note = language = None
        if pick.wants_summary:
            state, note = (SUM_SKIPPED, off_reason) if off_reason else (ITEM_WANTS_SUMMARY, None)
            language = profile.language
        rows.append(dict(pass_id=pass_id, profile=profile.slug, paper_id=pick.paper_id, rank=pick.rank,
                         score=pick.score, announce_type=pick.announce_type, matched=pick.matched,
                         match_details=pick.match_details, updated=pick.updated, summary_state=state,
                         language=language, note=note))
    if rows:
        s.execute(ProfileItem.__table__.insert(), rows)


def close_scoring(rt, pass_id: int) -> None:
    """When every profile of the pass is scored, plan the summaries exactly once (the process
    that wins the conditional status UPDATE), then enqueue them or the publication."""
    won = []

    def plan(s, p: Pass) -> list[tuple[str, str]]:
        won.append(p.id)
        totals = s.execute(select(PassProfile.candidates, PassProfile.selected)
                           .where(PassProfile.pass_id == p.id)).all()
        p.candidates, p.selected = sum(t[0] for t in totals), sum(t[1] for t in totals)
        if passes.summaries_off_reason(rt.config, rt.settings, p) is not None:
            return []
        jobs = plan_jobs(s, p.id, rt.readers(), rt.config.ai_summary, rt.settings.llm_model)
        log.info("pass %d: %d candidates, %d selected, %d summaries to make", p.id, p.candidates, p.selected,
                 len(jobs))
        return jobs

    with rt.session() as s:
        work = passes.close_scoring(s, pass_id, plan)
    if won:
        forget_pass(rt, pass_id)
    rt.send_all(work)


def forget_pass(rt, pass_id: int) -> None:
    """The pass's scoring is over: its day index and interest models are never asked for again.
    The index is the largest thing a scorer holds (a few MB a day); an embedded run goes on to
    publish, and a scorer worker waits for the next day, without it. (A scorer replica that lost
    the flip keeps its copy until the next pass replaces it.)"""
    for key in ("scorer.day", "scorer.interests"):
        slot = rt.cache.get(key)
        if slot is not None and slot.get("pass_id") == pass_id:
            slot.clear()


HANDLERS = [
    Handler(names.SCORE_PROFILES, score_profiles, soft_time_limit=300, time_limit=330, max_retries=5),
]

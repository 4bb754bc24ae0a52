"""Database -> plain digest data (the paper dict of docs/ARCHITECTURE.md).

Used by the publisher (to write the output files) and by the web service (to serve them). Every
loader runs one or two queries whatever the number of papers: items, papers and summaries come
back joined, never one query per paper. Returned dicts are plain JSON-able data (dates as ISO
strings), so renderers never touch the ORM.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from . import arxiv
from .models import (ITEM_WANTS_SUMMARY, SUM_FAILED, SUM_PENDING, SUMMARY_DONE, Pass, PassItem, Paper, ProfileItem,
                     Publication, Summary, SummaryJob)
from .reasons import public_reason

DEFAULT_PROFILE = "default"

SECTION_KEYS = ("contributions", "method", "results", "conclusions")


def _iso(value) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _summary_dict(summary: Summary | None) -> dict | None:
    if summary is None or summary.status != SUMMARY_DONE or not (summary.raw_text or summary.tldr):
        return None
    sections = summary.sections or {}
    return {
        "text": summary.raw_text or "",
        "tldr": summary.tldr,
        "sections": {k: sections.get(k) for k in SECTION_KEYS},
        "model": summary.model,
        "language": summary.language,
        "input": summary.input_mode,
        # What the model read: "html" / "pdf" (the full text) or "abstract" (also when the full
        # text could not be read); old summaries without a record read what `input` says.
        "source": summary.source or ("abstract" if summary.input_mode == "abstract" else None),
    }


def paper_dict(paper: Paper, item: ProfileItem, pass_item: PassItem | None, job: SummaryJob | None,
               summary: Summary | None, day) -> dict:
    """The paper dict (papers.json item, input of every renderer) for one digest entry.

    `summary` is attached only when the profile asked for it and it is finished; otherwise
    "summary" is None and "summary_note" says why (the summary job's or the item's note)."""
    version = (pass_item.version if pass_item else None) or paper.version
    published = (pass_item.announced if pass_item else None) or paper.version_announced or paper.announced
    wants = item.summary_state == ITEM_WANTS_SUMMARY
    out = {
        "id": paper.id,
        "version": version,
        "title": paper.title,
        "authors": list(paper.authors or []),
        "abstract": paper.abstract,
        "primary_category": paper.primary_category,
        "categories": list(paper.categories or [paper.primary_category]),
        "announce_type": item.announce_type,
        "published": _iso(published),
        "day": _iso(day),
        "score": float(item.score) if item.score is not None else 0.0,
        "rank": item.rank,
        "matched": list(item.matched or []),
        "match_details": list(item.match_details or []),
        "summary": _summary_dict(summary) if wants else None,
        "summary_status": (job.state if job is not None else SUM_PENDING) if wants else item.summary_state,
        "summary_note": _note(job, item, wants),
        "doi": paper.doi,
        "journal_ref": paper.journal_ref,
        "abs_url": arxiv.abs_url(paper.id),
        "pdf_url": arxiv.pdf_url(paper.id, version),
    }
    if item.updated:  # a replacement of a paper this reader was shown before (only then: the
        out["updated"] = True  # papers.json of readers without replacements is unchanged)
    return out


def _note(job: SummaryJob | None, item: ProfileItem, wants: bool) -> str | None:
    """Why the paper has no summary. A failure is said in our own words (shared/reasons.py):
    a note stored before reason codes existed may hold the provider's text, never published."""
    if not wants:
        return item.note
    if job is None:
        return None
    return public_reason(job.note) if job.state == SUM_FAILED else job.note


def _digest_rows(session: Session, profile: str, *where):
    """(Paper, ProfileItem, PassItem, SummaryJob, Summary, day) rows of a profile's digests,
    newest day first, by rank. The digest day is the publication's day when the profile's digest
    was published, else the pass's day."""
    day_col = func.coalesce(Publication.day, Pass.day)
    stmt = (
        select(Paper, ProfileItem, PassItem, SummaryJob, Summary, day_col)
        .join(Paper, Paper.id == ProfileItem.paper_id)
        .join(Pass, Pass.id == ProfileItem.pass_id)
        .outerjoin(PassItem, and_(PassItem.pass_id == ProfileItem.pass_id, PassItem.paper_id == ProfileItem.paper_id))
        .outerjoin(Publication, and_(Publication.pass_id == ProfileItem.pass_id,
                                     Publication.profile == ProfileItem.profile))
        .outerjoin(SummaryJob, and_(SummaryJob.pass_id == ProfileItem.pass_id,
                                    SummaryJob.paper_id == ProfileItem.paper_id,
                                    SummaryJob.language == ProfileItem.language))
        .outerjoin(Summary, Summary.id == SummaryJob.summary_id)
        .where(ProfileItem.profile == profile, *where)
        .order_by(day_col.desc(), ProfileItem.rank.asc())
    )
    return session.execute(stmt).all()


def _dicts(rows, day=None) -> list[dict]:
    return [paper_dict(p, i, pi, j, s, day if day is not None else d) for p, i, pi, j, s, d in rows]


def load_pass_papers(session: Session, pass_id: int, profile: str = DEFAULT_PROFILE) -> list[dict]:
    """A profile's digest of one pass: its ranked items ordered by rank."""
    return _dicts(_digest_rows(session, profile, ProfileItem.pass_id == pass_id))


def latest_publication(session: Session, profile: str = DEFAULT_PROFILE) -> Publication | None:
    """The profile's newest published day, or None when nothing was published yet."""
    return session.scalars(select(Publication).where(Publication.profile == profile)
                           .order_by(Publication.day.desc()).limit(1)).first()


def publication_stamp(session: Session, profile: str = DEFAULT_PROFILE) -> tuple:
    """A cheap value that changes whenever the profile publishes or re-publishes (one query):
    (number of publications, newest day, newest published_at)."""
    row = session.execute(
        select(func.count(), func.max(Publication.day), func.max(Publication.published_at))
        .where(Publication.profile == profile)
    ).one()
    return (int(row[0] or 0), _iso(row[1]), _iso(row[2]))


def load_day(session: Session, day: dt.date, profile: str = DEFAULT_PROFILE) -> list[dict] | None:
    """The papers of the profile's publication of `day`, or None when that day was not published."""
    pub = session.get(Publication, (profile, day))
    if pub is None:
        return None
    return _dicts(_digest_rows(session, profile, ProfileItem.pass_id == pub.pass_id), day=day)


def load_window(session: Session, days: int, max_items: int, profile: str = DEFAULT_PROFILE) -> list[dict]:
    """The feeds' rolling window: papers of the profile's publications in the last `days` days
    counted back from its NEWEST publication (not from now), newest digest first then by rank, at
    most `max_items`. A paper present in several digests appears once, in its newest one."""
    newest = session.scalar(select(func.max(Publication.day)).where(Publication.profile == profile))
    if newest is None:
        return []
    if isinstance(newest, str):  # defensive: some SQLite drivers return text for aggregates
        newest = dt.date.fromisoformat(newest)
    since = newest - dt.timedelta(days=max(days, 1) - 1)
    rows = _digest_rows(session, profile, and_(Publication.day >= since, Publication.day <= newest))
    out, seen = [], set()
    for paper, item, pass_item, job, summary, day in rows:
        if paper.id in seen:
            continue
        seen.add(paper.id)
        out.append(paper_dict(paper, item, pass_item, job, summary, day))
        if len(out) >= max_items:
            break
    return out


def published_days(session: Session, profile: str = DEFAULT_PROFILE) -> list[dt.date]:
    """Every day the profile published, newest first."""
    return list(session.scalars(select(Publication.day).where(Publication.profile == profile)
                                .order_by(Publication.day.desc())))


def known_categories(configured, papers) -> list[str]:
    """Configured categories first, then any other category present in `papers`."""
    seen = dict.fromkeys(configured)
    for p in papers:
        for cat in [p.get("primary_category"), *(p.get("categories") or [])]:
            if cat:
                seen.setdefault(cat)
    return list(seen)


def filter_papers(papers: list[dict], category: str | None = None, min_score: float | None = None,
                  q: str | None = None, limit: int | None = None) -> list[dict]:
    """Papers matching every given filter, in their original order.

    category: the paper lists it (primary or cross-list); min_score: score >= it; q: every
    word occurs (case-insensitively) in the title or abstract; limit: at most that many."""
    words = [w.casefold() for w in (q or "").split()]
    out = []
    for p in papers:
        if category and category != p.get("primary_category") and category not in (p.get("categories") or []):
            continue
        if min_score is not None and (p.get("score") or 0.0) < min_score:
            continue
        if words:
            hay = f"{p.get('title', '')}\n{p.get('abstract', '')}".casefold()
            if not all(w in hay for w in words):
                continue
        out.append(p)
        if limit is not None and len(out) >= limit:
            break
    return out


def build_context(papers: list[dict], *, day, generated_at: dt.datetime, categories, keywords,
                  schedule: str, model: str, summaries_note: str | None = None) -> dict:
    """The digest context of docs/ARCHITECTURE.md. When no note is given and no paper has a
    summary, the note is taken from the papers' own reasons (e.g. "set DASHSCOPE_API_KEY")."""
    if summaries_note is None and papers and not any(p.get("summary") for p in papers):
        notes = [p.get("summary_note") for p in papers if p.get("summary_note")]
        summaries_note = notes[0] if notes else None
    return {"generated_at": generated_at, "day": day, "categories": list(categories),
            "keywords": list(keywords), "schedule": schedule, "summaries_note": summaries_note,
            "model": model, "papers": papers}

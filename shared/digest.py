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
from .models import SUMMARY_DONE, Pass, PassItem, Paper, Publication, Summary

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


def paper_dict(paper: Paper, item: PassItem, summary: Summary | None, day) -> dict:
    """The paper dict (papers.json item, input of every renderer) for one digest entry.

    `summary` is attached only when it is a finished summary; otherwise "summary" is None and
    "summary_note" says why (the pass item's note)."""
    version = item.version or paper.version
    published = item.announced or paper.version_announced or paper.announced
    return {
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
        "summary": _summary_dict(summary),
        "summary_status": item.summary_state,
        "summary_note": item.note,
        "doi": paper.doi,
        "journal_ref": paper.journal_ref,
        "abs_url": arxiv.abs_url(paper.id),
        "pdf_url": arxiv.pdf_url(paper.id, version),
    }


def _digest_rows(session: Session, *where):
    """(Paper, PassItem, Summary|None, day) rows of published digests, newest day first, by rank.

    The digest day is the publication's day when the pass was published, else the pass's day."""
    day_col = func.coalesce(Publication.day, Pass.day)
    stmt = (
        select(Paper, PassItem, Summary, day_col)
        .join(Paper, Paper.id == PassItem.paper_id)
        .join(Pass, Pass.id == PassItem.pass_id)
        .outerjoin(Publication, Publication.pass_id == PassItem.pass_id)
        .outerjoin(Summary, Summary.id == PassItem.summary_id)
        .where(PassItem.rank.is_not(None), *where)
        .order_by(day_col.desc(), PassItem.rank.asc())
    )
    return session.execute(stmt).all()


def load_pass_papers(session: Session, pass_id: int) -> list[dict]:
    """The digest of one pass: its ranked items (rank not null) ordered by rank."""
    return [paper_dict(p, i, s, d) for p, i, s, d in _digest_rows(session, PassItem.pass_id == pass_id)]


def latest_publication(session: Session) -> Publication | None:
    """The newest published day, or None when nothing was published yet."""
    return session.scalars(select(Publication).order_by(Publication.day.desc()).limit(1)).first()


def publication_stamp(session: Session) -> tuple:
    """A cheap value that changes whenever any publication is added or re-published (one query):
    (number of publications, newest day, newest published_at)."""
    row = session.execute(
        select(func.count(), func.max(Publication.day), func.max(Publication.published_at))
    ).one()
    return (int(row[0] or 0), _iso(row[1]), _iso(row[2]))


def load_day(session: Session, day: dt.date) -> list[dict] | None:
    """The papers of the publication of `day`, or None when that day was not published."""
    pub = session.get(Publication, day)
    if pub is None:
        return None
    return [paper_dict(p, i, s, day) for p, i, s, _ in _digest_rows(session, PassItem.pass_id == pub.pass_id)]


def load_window(session: Session, days: int, max_items: int) -> list[dict]:
    """The feeds' rolling window: papers of publications in the last `days` days counted back
    from the NEWEST publication (not from now), newest digest first then by rank, at most
    `max_items`. A paper present in several digests appears once, in its newest one."""
    newest = session.scalar(select(func.max(Publication.day)))
    if newest is None:
        return []
    if isinstance(newest, str):  # defensive: some SQLite drivers return text for aggregates
        newest = dt.date.fromisoformat(newest)
    since = newest - dt.timedelta(days=max(days, 1) - 1)
    rows = _digest_rows(session, and_(Publication.day >= since, Publication.day <= newest))
    out, seen = [], set()
    for paper, item, summary, day in rows:
        if paper.id in seen:
            continue
        seen.add(paper.id)
        out.append(paper_dict(paper, item, summary, day))
        if len(out) >= max_items:
            break
    return out


def published_days(session: Session) -> list[dt.date]:
    """Every published day, newest first."""
    return list(session.scalars(select(Publication.day).order_by(Publication.day.desc())))


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

"""Readers' ratings (docs/DESIGN.md "Feedback"): the ratings table's repository functions.

One row per (profile, paper); the last rating wins, and recording the rating a paper already
has changes nothing (a repeated click is harmless). Used by the web service (the page's buttons,
feedback links), the CLI (add, import, export) and the scorer (which trains on them). The caller
owns the transaction.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import select

from .models import RATING_SOURCES, RATINGS, Rating, utcnow


def _insert_for(session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def record(session, profile: str, ratings: Iterable[tuple[str, str]], source: str) -> int:
    """Store (paper id, "up"|"down") ratings for `profile` (papers must exist). Returns the
    number of rows made or changed; a paper rated the same way again counts 0."""
    if source not in RATING_SOURCES:
        raise ValueError(f"rating source must be one of {', '.join(RATING_SOURCES)}")
    now = utcnow()
    rows = {}
    for paper_id, rating in ratings:
        if rating not in RATINGS:
            raise ValueError(f"rating must be one of {', '.join(RATINGS)}")
        rows[paper_id] = {"profile": profile, "paper_id": paper_id, "rating": rating, "source": source,
                          "created_at": now, "updated_at": now}  # the same paper twice: the last wins
    if not rows:
        return 0
    stmt = _insert_for(session)(Rating.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["profile", "paper_id"],
        set_={"rating": stmt.excluded.rating, "source": stmt.excluded.source, "updated_at": stmt.excluded.updated_at},
        where=Rating.__table__.c.rating != stmt.excluded.rating)
    values = list(rows.values())
    changed = 0
    for i in range(0, len(values), 500):
        chunk = values[i:i + 500]
        before = dict(session.execute(select(Rating.paper_id, Rating.rating).where(
            Rating.profile == profile, Rating.paper_id.in_([r["paper_id"] for r in chunk]))).all())
        changed += sum(1 for r in chunk if before.get(r["paper_id"]) != r["rating"])
        session.execute(stmt, chunk)
    return changed


def ratings_of(session, profiles: list[str]) -> dict[str, list[tuple[str, str]]]:
    """{profile: [(paper id, rating)] by paper id} for each of `profiles` (one query)."""
    out: dict[str, list[tuple[str, str]]] = {slug: [] for slug in profiles}
    if not profiles:
        return out
    rows = session.execute(select(Rating.profile, Rating.paper_id, Rating.rating)
                           .where(Rating.profile.in_(profiles)).order_by(Rating.profile, Rating.paper_id))
    for slug, paper_id, rating in rows:
        out[slug].append((paper_id, rating))
    return out


def rating_of(session, profile: str, paper_id: str) -> str | None:
    row = session.get(Rating, (profile, paper_id))
    return row.rating if row is not None else None

"""One profile scored against the day's index: the same scores, matches and exclusions as
matcher.Matcher (tests/test_scorer_index.py proves it on the recorded day), at the cost of a few
set operations per keyword instead of a scan of every paper.

Score (matcher.py's scale): per keyword, weight x (1.0 if in title or abstract, +0.5 more if in
the title); + author_weight per followed author; the sum times the weight of the paper's primary
category; rounded to 4 decimals. Interest similarity is added by the caller.
"""
from __future__ import annotations

from dataclasses import dataclass

from .dayindex import DayIndex
from .matcher import _same_person, normalize_name


@dataclass
class Scored:
    """A paper's result for one profile; details are built only for the papers that get a rank."""

    index: int
    score: float
    terms: list[int]            # keyword indexes (config order) that matched
    authors: list[int]          # followed-author indexes that matched
    excluded_by: str | None
    category_weight: float


def score_profile(day: DayIndex, profile, only: frozenset[int] | None = None) -> dict[int, Scored]:
    """{paper index: Scored} for every paper (of `only`, when given: the profile's eligible
    papers, so the others cost nothing) with at least one keyword or author match, or excluded."""
    points: dict[int, float] = {}
    terms: dict[int, list[int]] = {}
    for k, spec in enumerate(profile.keywords):
        title, abstract = day.term_hits(spec)
        hits = title | abstract
        if only is not None:
            hits &= only
        full, extra = spec.weight, spec.weight * 1.5
        for i in hits:
            points[i] = points.get(i, 0.0) + (extra if i in title else full)
            terms.setdefault(i, []).append(k)
    authors: dict[int, list[int]] = {}
    for a, name in enumerate(profile.authors):
        parts = normalize_name(name)
        for i in day.author_hits(parts, _same_person):
            if only is None or i in only:
                points[i] = points.get(i, 0.0) + float(profile.author_weight)
                authors.setdefault(i, []).append(a)
    excluded: dict[int, str] = {}
    for spec in reversed(profile.exclude_keywords):  # the first exclude term (config order) wins
        title, abstract = day.term_hits(spec)
        hits = title | abstract
        for i in (hits & only if only is not None else hits):
            excluded[i] = spec.term
    weights = profile.category_weights
    out = {}
    for i, total in points.items():
        cw = 1.0
        if weights:
            cats = day.papers[i].categories
            if cats:
                cw = weights.get(cats[0], weights.get(cats[0].split(".")[0], 1.0))
        out[i] = Scored(i, round(total * cw, 4), terms.get(i, []), authors.get(i, []), excluded.get(i), cw)
    for i, term in excluded.items():  # excluded papers without a match still need their reason
        if i not in out:
            out[i] = Scored(i, 0.0, [], [], term, 1.0)
    return out


def details(day: DayIndex, profile, scored: Scored) -> tuple[list[str], list[dict]]:
    """(matched terms, match_details) exactly as matcher.MatchResult gives them."""
    matched, out = [], []
    for k in scored.terms:
        spec = profile.keywords[k]
        title, abstract = day.term_hits(spec)
        in_title, in_abstract = scored.index in title, scored.index in abstract
        where = (["title"] if in_title else []) + (["abstract"] if in_abstract else [])
        matched.append(spec.term)
        out.append({"term": spec.term, "where": where, "points": round(spec.weight * (1.5 if in_title else 1.0), 4)})
    for a in scored.authors:
        label = profile.authors[a]
        matched.append(label)
        out.append({"term": label, "where": ["authors"], "points": round(float(profile.author_weight), 4)})
    return matched, out

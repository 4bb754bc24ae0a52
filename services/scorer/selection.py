"""A profile's digest for one pass: which of the day's papers it gets, in which order.

Candidates: papers relevant to the profile's categories whose announce type (relative to the
profile's categories, shared.arxiv.effective_type) is in its `announce_types`, not excluded, not
hidden (rated "less like this" by the reader), with at least one match (keyword, followed author,
or bonus terms worth more than 0 points together: interest similarity, "liked") and score >=
min_score.
Bonus terms add their points (negative ones too: "disliked") to the keyword score.
Never twice: a paper already in one of the profile's digests of an earlier day is left out,
unless it comes back as a replacement (a newer version than the one shown) the profile asked
for; then it is marked as updated. Order: score
descending, then arXiv id (ties break deterministically). The top `max_papers` get a rank; the
first `max_papers_to_summarize` of them want a summary (or are marked skipped with the reason
when the pass makes no LLM calls).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .dayindex import DayIndex
from .profile_scorer import Scored, details

INTEREST_TERM = "interests"
REPLACEMENTS = ("replace", "replace-cross")


@dataclass
class Pick:
    paper_id: str
    rank: int
    score: float
    announce_type: str
    matched: list[str]
    match_details: list[dict]
    updated: bool
    wants_summary: bool


@dataclass
class Selection:
    candidates: int
    picks: list[Pick] = field(default_factory=list)


def select_profile(day: DayIndex, profile, scored: dict[int, Scored], bonus: dict[int, list[dict]],
                   shown_before: dict[str, int], hidden: frozenset[str] | set[str] = frozenset()) -> Selection:
    """`scored`: score_profile's result (restricting it to the eligible papers is only faster);
    `bonus`: {paper index: [match detail]}, the terms beyond keywords and authors (interests,
    feedback), each {"term", "where", "points", ...}: added to the score after the category
    weight and appended to match_details as they are; `shown_before`: {paper id: newest version
    shown} of the profile's digests of earlier days; `hidden`: paper ids never to select."""
    eligible, kinds = day.eligible(profile.categories, profile.announce_types)
    cands: list[tuple[float, str, int, str, bool]] = []
    for i in (set(scored) | set(bonus)) & eligible:
        paper = day.papers[i]
        s = scored.get(i)
        if (s is not None and s.excluded_by) or paper.id in hidden:
            continue
        extra = bonus.get(i, ())
        points = sum(d["points"] for d in extra)
        if not ((s and (s.terms or s.authors)) or points > 0):
            continue
        score = round((s.score if s else 0.0) + points, 4)
        if score < profile.min_score:
            continue
        kind = kinds[i]
        updated = paper.id in shown_before
        if updated and (kind not in REPLACEMENTS or paper.version <= shown_before[paper.id]):
            continue  # never twice
        cands.append((score, paper.id, i, kind, updated))
    cands.sort(key=lambda c: (-c[0], c[1]))
    picks = []
    for rank, (score, pid, i, kind, updated) in enumerate(cands[:profile.max_papers], start=1):
        s = scored.get(i) or Scored(i, 0.0, [], [], None, 1.0)
        matched, match_details = details(day, profile, s)
        for d in bonus.get(i, ()):  # added after the category weight; visible like any term
            if d["points"] > 0:
                matched = [*matched, d["term"]]
            match_details = [*match_details, d]
        picks.append(Pick(pid, rank, score, kind, matched, match_details, updated,
                          rank <= profile.max_papers_to_summarize))
    return Selection(candidates=len(cands), picks=picks)

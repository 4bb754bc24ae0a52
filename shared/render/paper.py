"""A paper dict as every renderer shows it: TeX made text, matched terms in one clean line.

`readable(p)` is the paper dict (shared.digest) with title, authors and abstract converted from
TeX to text and the summary's math made text (shared.render.tex); the renderers (README, feeds,
page) call it first. papers.json is the data and keeps the original fields.

`matched(p)` / `matched_line(p)`: the terms that matched, in the scorer's order, and where other
than the abstract they matched ("LLM, inference · title"): nearly every match is in the
abstract, so that place is not repeated on every term.
"""
from __future__ import annotations

from .tex import markdown_math, to_text

PLACES = ("title", "authors", "categories")  # shown; "abstract" is the usual place and is not
LIKED, DISLIKED = "liked", "disliked"  # the reader's ratings' terms (services/scorer/profile_feedback.py)


def readable(p: dict) -> dict:
    """A shallow copy of paper dict `p` ready for display (the input is not modified)."""
    out = dict(p)
    out["title"] = to_text(p.get("title"))
    out["authors"] = [to_text(a) for a in p.get("authors") or []]
    out["abstract"] = to_text(p.get("abstract"))
    summary = p.get("summary")
    if summary:
        sections = summary.get("sections") or {}
        out["summary"] = {**summary, "tldr": markdown_math(summary.get("tldr")) or summary.get("tldr"),
                          "text": markdown_math(summary.get("text")),
                          "sections": {k: markdown_math(v) if v else v for k, v in sections.items()}}
    return out


def matched(p: dict) -> tuple[list[str], list[str]]:
    """(terms, places): the matched terms in order and the notable places they matched."""
    details = p.get("match_details") or []
    if not details:
        return [str(t) for t in p.get("matched") or []], []
    terms, places = [], []
    for d in details:
        term = str(d.get("term") or "")
        if term == DISLIKED:  # points taken away: a reason for the rank, not a match
            continue
        if term and term not in terms:
            terms.append(term)
        for where in d.get("where") or []:
            if where in PLACES and where not in places:
                places.append(where)
    return terms, sorted(places, key=PLACES.index)


def matched_line(p: dict) -> str:
    """"LLM, inference · title" (terms, then the notable places), or "" when nothing matched."""
    terms, places = matched(p)
    if not terms:
        return ""
    return ", ".join(terms) + (" · " + ", ".join(places) if places else "")


def title_terms(p: dict) -> set[str]:
    """The terms that matched in the title (the page marks them)."""
    return {str(d.get("term")) for d in p.get("match_details") or [] if "title" in (d.get("where") or [])}

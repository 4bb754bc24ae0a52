"""Query parameters of the feeds, JSON and page routes: category, min_score, q, limit.

`parse_filters(args)` returns a normalised dict (the cache key is built from it, so
"?min_score=5" and "?min_score=5.0" share one cached response) or raises BadParam with one line.
Empty values mean "not given" (the HTML form submits empty fields).
"""
from __future__ import annotations

import math

from shared.arxiv import is_category

MAX_LIMIT = 5000
MAX_Q = 200


class BadParam(ValueError):
    """A query parameter has a bad value; str() is the one-line message for a 400."""


def parse_filters(args) -> dict:
    """{"category": str|None, "min_score": float|None, "q": str|None, "limit": int|None}."""
    def first(name):
        value = args.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    category, min_score, q, limit = first("category"), first("min_score"), first("q"), first("limit")
    if category is not None and not is_category(category):
        raise BadParam("category: expected an arXiv category such as 'cs.LG'")
    score = None
    if min_score is not None:
        try:
            score = float(min_score)
        except ValueError:
            raise BadParam(f"min_score: expected a number, got {min_score[:40]!r}") from None
        if not math.isfinite(score):
            raise BadParam("min_score: expected a finite number")
    if q is not None:
        if len(q) > MAX_Q:
            raise BadParam(f"q: at most {MAX_Q} characters")
        q = " ".join(q.split())
    count = None
    if limit is not None:
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= MAX_LIMIT:
            raise BadParam(f"limit: expected a whole number from 1 to {MAX_LIMIT}")
        count = int(limit)
    return {"category": category, "min_score": score, "q": q, "limit": count}


def filters_key(filters: dict) -> tuple:
    return (filters["category"], filters["min_score"], filters["q"], filters["limit"])


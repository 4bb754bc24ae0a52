"""Query parameters of the feeds, JSON and page routes: category, min_score, q, limit.

`parse_filters(args)` returns a normalised dict (the cache key is built from it, so
"?min_score=5" and "?min_score=5.0" share one cached response) or raises BadParam with one line.
Empty values mean "not given" (the HTML form submits empty fields).
"""
from __future__ import annotations

import math
import re

from shared.arxiv import is_category
from shared.render.links import SORTS, VIEWS

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


_HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}"
                      r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


def parse_view(args) -> dict:
    """The page's own parameters: {"sort": "score"|"category"|"date", "view": "full"|"compact"}
    (defaults: score, full). Not part of the feeds' filters."""
    out = {}
    for name, allowed in (("sort", SORTS), ("view", VIEWS)):
        value = args.get(name)
        value = value.strip() if isinstance(value, str) and value.strip() else allowed[0]
        if value not in allowed:
            raise BadParam(f"{name}: expected one of {', '.join(allowed)}")
        out[name] = value
    return out


def request_base_url(scheme: str, host: str) -> str:
    """The site's base URL as the request named it ("http://127.0.0.1:8013"), for self links
    when feeds.public_url is not set. A Host header that is not a host[:port] is refused."""
    if scheme not in ("http", "https") or not host or len(host) > 255 or not _HOST_RE.match(host):
        raise BadParam("Host: expected a host name or address, optionally with :port")
    return f"{scheme}://{host.lower()}"

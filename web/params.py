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


def check_query(query_string: bytes | str) -> None:
    """The whole query string, before any route reads it: valid UTF-8 once percent-decoded (werkzeug
    would silently turn bad bytes into U+FFFD) and no control characters in any name or value."""
    from urllib.parse import parse_qsl

    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    if not query_string:
        return
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, errors="strict", max_num_fields=100)
    except UnicodeDecodeError:
        raise BadParam("query string: not valid UTF-8") from None
    except ValueError:
        raise BadParam("query string: too many parameters") from None
    for name, value in pairs:
        if _CONTROL_RE.search(name) or _CONTROL_RE.search(value):
            raise BadParam(f"{name[:40] if not _CONTROL_RE.search(name) else 'parameter'}: control characters are not allowed")


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
        # ASCII only: float() would take "٣" or "1_0"; a number here is written as in a URL.
        if not _NUMBER_RE.fullmatch(min_score):
            raise BadParam(f"min_score: expected a number, got {min_score[:40]!r}")
        score = float(min_score)
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


def parse_day(value: str):
    """/day/<YYYY-MM-DD>: a real calendar date in ASCII digits (fromisoformat alone would take
    other forms and other scripts' digits)."""
    import datetime as dt

    if not (isinstance(value, str) and _DAY_RE.fullmatch(value)):
        raise BadParam("day: expected a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadParam("day: expected a date as YYYY-MM-DD") from None


def filters_key(filters: dict) -> tuple:
    return (filters["category"], filters["min_score"], filters["q"], filters["limit"])


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
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

"""Backfill: papers of announcement days the fetcher missed (first run, downtime), from the query
API, as date-range queries over all categories at once, paged with start/max_results.

Why these dates. The feed of announcement day D lists the papers submitted before the cut-off of
D-1 (14:00 US/Eastern), so a paper submitted up to the end of D-2 has been announced on D or
earlier, and one submitted on D-1 may still be waiting for D+1. A category whose watermark W (the
last announcement day ingested for it) leaves a weekday strictly between W and D missed at least
one announcement; its gap is then the submissions of [W-1, D-2] (W-1: the tail of W's cut-off
day), never more than `days_back` days before D. The first run of a category (no watermark) looks
back `days_back` days: [D-days_back, D-2]. Weekends carry no announcement, so Friday -> Monday
is no gap: the common daily case makes no API request at all.

`backfill_spans` decides the gaps; `fetch_backfill` downloads them with ONE paged query for all
categories (`(cat:A OR cat:B ...) AND submittedDate:[...]`, each request 3 s after the previous
one), split only where arXiv's limits require it: a URL that would be too long, or more results
than the API returns for one query (API_TOTAL_MAX). It keeps each paper once and only inside its
own categories' spans. Deduplication against the feed and the database is the caller's
(handlers.fetch_pass), inside its one transaction.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from .api import date_query
from .client import API_PAGE_MAX, API_TOTAL_MAX, MAX_URL
from .records import FeedItem

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Span:
    """Submission dates [start, end] (whole days) to query for one category."""

    category: str
    start: dt.date
    end: dt.date


def _missed_weekday(after: dt.date, before: dt.date) -> bool:
    """True when a Monday-Friday date lies strictly between `after` and `before`."""
    day = after + dt.timedelta(days=1)
    while day < before:
        if day.weekday() < 5:
            return True
        day += dt.timedelta(days=1)
    return False


def backfill_spans(watermarks: dict[str, dt.date | None], day: dt.date, days_back: int) -> list[Span]:
    """The date ranges to backfill, one per category that needs it (config order kept).
    `watermarks` maps each configured category to its last ingested announcement day (None: never
    fetched). Returns [] in the common case (watermark = previous announcement day)."""
    end = day - dt.timedelta(days=2)
    floor = day - dt.timedelta(days=days_back)
    spans = []
    for category, last in watermarks.items():
        if days_back <= 0:
            continue
        if last is None:
            start = floor
        elif last >= day or not _missed_weekday(last, day):
            continue
        else:
            start = max(last - dt.timedelta(days=1), floor)
        if start <= end:
            spans.append(Span(category, start, end))
    return spans


def api_category(category: str) -> str:
    """The query API's `cat:` term: an archive ('cs') matches all its categories ('cs.*')."""
    return category if "." in category else f"{category}.*"


@dataclass(frozen=True, slots=True)
class Query:
    """One paged date-range query over several categories that share the same gap."""

    categories: tuple[str, ...]
    start: dt.date
    end: dt.date

    @property
    def text(self) -> str:
        return date_query([api_category(c) for c in self.categories], self.start, self.end)

    @property
    def label(self) -> str:
        return f"{', '.join(self.categories)} ({self.start}..{self.end})"

    def halves(self) -> list["Query"]:
        """Two queries for half the categories each, or (one category) for half the days each;
        [] when it cannot be split further."""
        cats, start, end = self.categories, self.start, self.end
        if len(cats) > 1:
            mid = len(cats) // 2
            return [Query(cats[:mid], start, end), Query(cats[mid:], start, end)]
        if start >= end:
            return []
        mid = start + (end - start) // 2
        return [Query(cats, start, mid), Query(cats, mid + dt.timedelta(days=1), end)]


def plan_queries(spans: list[Span], api_url: str) -> list[Query]:
    """One query per distinct gap (on a first run, or after downtime, every category has the same
    one), halved only while a request URL would be longer than MAX_URL."""
    groups: dict[tuple[dt.date, dt.date], list[str]] = {}
    for sp in spans:
        groups.setdefault((sp.start, sp.end), []).append(sp.category)
    todo = [Query(tuple(cats), start, end) for (start, end), cats in groups.items()]
    out = []
    while todo:
        q = todo.pop(0)
        params = {"search_query": q.text, "sortBy": "submittedDate", "sortOrder": "ascending",
                  "start": API_TOTAL_MAX, "max_results": API_PAGE_MAX}  # the longest URL it will send
        if len(f"{api_url}?{urlencode(params)}") > MAX_URL and len(q.categories) > 1:
            todo[:0] = q.halves()
        else:
            out.append(q)
    return out


def fetch_backfill(client, spans: list[Span], page_size: int) -> list[FeedItem]:
    """Every paper the spans ask for, once (the highest version wins). `announced` is set to the
    submission date of the version (the API does not say the announcement day). Raises what the
    client raises (PermanentError, TransientError, also for a page that stayed short): the caller
    stores nothing of a failed backfill and keeps its watermarks."""
    by_id: dict[str, FeedItem] = {}
    todo = plan_queries(spans, client.api_url)
    while todo:
        q = todo.pop(0)
        pages = client.search(q.text, page_size=page_size, label=q.label)
        count, first = 0, True
        for page in pages:
            if first and page.total > API_TOTAL_MAX:
                if parts := q.halves():  # more than one query can return: ask for halves instead
                    pages.close()
                    todo[:0] = parts
                    break
                log.warning("backfill %s: %d results, arXiv returns at most %d of one query",
                            q.label, page.total, API_TOTAL_MAX)
            first = False
            for item in page.items:
                when = item.updated or item.published
                item.announced = when.date() if when else None
                count += 1
                seen = by_id.get(item.id)
                if seen is None or item.version > seen.version:
                    by_id[item.id] = item
        else:
            log.info("backfill %s: %d papers", q.label, count)
    return list(by_id.values())

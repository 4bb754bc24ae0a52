"""Backfill: papers of announcement days the fetcher missed (first run, downtime), from the query
API, per category, as date-range queries paged with start/max_results.

Why these dates. The feed of announcement day D lists the papers submitted before the cut-off of
D-1 (14:00 US/Eastern), so a paper submitted up to the end of D-2 has been announced on D or
earlier, and one submitted on D-1 may still be waiting for D+1. A category whose watermark W (the
last announcement day ingested for it) leaves a weekday strictly between W and D missed at least
one announcement; its gap is then the submissions of [W-1, D-2] (W-1: the tail of W's cut-off
day), never more than `days_back` days before D. The first run of a category (no watermark) looks
back `days_back` days: [D-days_back, D-2]. Weekends carry no announcement, so Friday -> Monday
is no gap: the common daily case makes no API request at all.

`backfill_spans` decides the gaps; `fetch_backfill` downloads them (at most one paged query per
category) and returns each paper once. Deduplication against the feed and the database is the
caller's (handlers.fetch_pass), inside its one transaction.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

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


def fetch_backfill(client, spans: list[Span], page_size: int) -> list[FeedItem]:
    """Every paper the spans' queries return, once (a paper cross-listed to two categories comes
    back from both queries; the highest version wins). `announced` is set to the submission date
    of the version (the API does not say the announcement day). Raises what the client raises
    (PermanentError, TransientError): the caller stores nothing of a failed backfill."""
    by_id: dict[str, FeedItem] = {}
    for span in spans:
        count = 0
        for item in client.search_range(api_category(span.category), span.start, span.end, page_size=page_size):
            count += 1
            when = item.updated or item.published
            item.announced = when.date() if when else None
            seen = by_id.get(item.id)
            if seen is None or item.version > seen.version:
                by_id[item.id] = item
        log.info("backfill %s %s..%s: %d papers", span.category, span.start, span.end, count)
    return list(by_id.values())

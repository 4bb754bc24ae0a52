"""HTTP to arXiv: the announcement feed and the query API, politely.

Every request first goes through the Pacer (one request per interval across all processes),
carries a descriptive User-Agent, and is retried with exponential backoff and full jitter on
429/5xx, connection errors and timeouts, honouring Retry-After. The pacer's own wait is never
counted as backoff. Failures surface as one-line TransientError (gave up retrying) or
PermanentError (HTTP 400 error feed, unusable body).
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import time
from typing import Iterator

from shared.arxiv import effective_type, relevant
from shared.errors import PermanentError, TransientError, retry_after_seconds

from .api import ApiPage, date_query, parse_api
from .records import FeedItem
from .rss import MAX_RESPONSE_BYTES, FeedResult, parse_rss
from .transport import Transport, TransportError

log = logging.getLogger(__name__)

MAX_URL = 2000        # split the category list when one feed URL would be longer
FEED_ITEM_CAP = 2000  # arXiv returns at most this many items per feed
API_PAGE_MAX = 2000   # arXiv's documented per-call maximum
API_TOTAL_MAX = 30000  # arXiv returns at most this many results of one query (in slices of 2000)


def user_agent_for(contact: str) -> str:
    from shared.arxiv import user_agent

    return user_agent(contact)


def _cause(exc: Exception) -> str:
    """The parser's message without its generic 'arXiv feed: ' prefix (the caller names the feed)."""
    text = str(exc)
    for prefix in ("arXiv feed error: ", "arXiv feed: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def _safe_url(url: str) -> str:
    """The URL for error messages: masked (shared.redact.mask_url, credentials "***"), then
    without its query string (it may carry tokens)."""
    from shared.redact import mask_url

    return mask_url(url).split("?", 1)[0].split("#", 1)[0]


class ArxivClient:
    def __init__(self, rss_url: str, api_url: str, pacer, user_agent: str, timeout: float = 30.0,
                 max_retries: int = 4, backoff_cap: float = 120.0, backoff_base: float = 1.0):
        self.rss_url = rss_url.rstrip("/")
        self.api_url = api_url
        self.pacer = pacer
        self.max_retries = max_retries
        self.backoff_cap = backoff_cap
        self.backoff_base = backoff_base
        # One connection at a time, as arXiv's terms ask (services/fetcher/transport.py).
        self.http = Transport(user_agent, timeout, max_bytes=MAX_RESPONSE_BYTES)
        self.requests_made = 0
        self.backoff_slept = 0.0  # seconds of retry backoff (pacer waits excluded)
        self.short_pages = 0  # query-API pages that came back short and were asked for again

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "ArxivClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------
    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**attempt)); never less than Retry-After."""
        delay = random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** attempt))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_cap))
        return delay

    def get(self, url: str, params: dict | None = None) -> bytes:
        """GET with pacing and retries; returns the body of a 200 response. HTTP 400 becomes a
        PermanentError carrying arXiv's message (the body is an error feed)."""
        last = ""
        retry_after = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = self._backoff(attempt - 1, retry_after)
                self.backoff_slept += delay
                time.sleep(delay)
            self.pacer.wait()
            self.requests_made += 1
            retry_after = None
            try:
                resp = self.http.get(url, params=params)
            except TransportError as exc:
                last = str(exc)
                log.warning("arXiv request %s failed (%s), attempt %d", _safe_url(url), last, attempt + 1)
                continue
            if resp.status == 200:
                return resp.body
            if resp.status == 400:
                self._raise_400(url, resp.body)
            if resp.status == 429 or resp.status >= 500:
                retry_after = retry_after_seconds(resp.headers)
                last = f"HTTP {resp.status}"
                log.warning("arXiv request %s: %s, attempt %d", _safe_url(url), last, attempt + 1)
                continue
            raise PermanentError(f"arXiv request {_safe_url(url)} failed: HTTP {resp.status}")
        raise TransientError(f"arXiv request {_safe_url(url)} failed: {last} after "
                             f"{self.max_retries + 1} attempts", retry_after=retry_after)

    def _raise_400(self, url: str, body: bytes) -> None:
        parse = parse_api if url.startswith(self.api_url) else parse_rss
        try:
            parse(body)
        except PermanentError as exc:
            raise PermanentError(str(exc)) from None
        raise PermanentError(f"arXiv request {_safe_url(url)} failed: HTTP 400")

    # -- announcements ---------------------------------------------------------------------
    def _feed(self, categories: list[str]) -> list[FeedResult]:
        """One request for the whole list; halves it when the URL is too long or the feed hit
        arXiv's item cap (then some items would be missing)."""
        url = f"{self.rss_url}/{'+'.join(categories)}"
        if len(url) > MAX_URL and len(categories) > 1:
            mid = len(categories) // 2
            return self._feed(categories[:mid]) + self._feed(categories[mid:])
        try:
            result = parse_rss(self.get(url))
        except PermanentError as exc:  # one line that says which request and why
            raise PermanentError(f"arXiv feed for {'+'.join(categories)}: {_cause(exc)}") from None
        if len(result.items) >= FEED_ITEM_CAP:
            if len(categories) > 1:
                mid = len(categories) // 2
                return self._feed(categories[:mid]) + self._feed(categories[mid:])
            log.warning("arXiv feed %s returned %d items (arXiv's cap): some may be missing",
                        categories[0], len(result.items))
        return [result]

    def fetch_announcements(self, categories) -> FeedResult:
        """Today's announcements for `categories` (archives or categories), relevant items only,
        each paper once. Types are relative to the whole set: when the list had to be split, a
        paper seen in several partial feeds keeps the occurrence whose primary is in its feed."""
        categories = list(categories)
        results = self._feed(categories)
        merged = FeedResult(title=results[0].title, day=results[0].day, build_date=results[0].build_date)
        by_id: dict[str, FeedItem] = {}
        for result in results:
            for item in result.items:
                if not relevant(item, categories):
                    continue
                seen = by_id.get(item.id)
                if seen is None or (item.announce_type in ("new", "replace")
                                    and seen.announce_type not in ("new", "replace")):
                    by_id[item.id] = item
        for item in by_id.values():
            item.announce_type = effective_type(item, categories)
        merged.items = list(by_id.values())
        return merged

    # -- query API backfill ----------------------------------------------------------------
    def search(self, query: str, page_size: int = API_PAGE_MAX, label: str | None = None) -> Iterator[ApiPage]:
        """The pages of `query`'s results, oldest submission first, until arXiv's totalResults
        (at most API_TOTAL_MAX) is reached. A page that comes back empty or short before that (the
        API does this now and then) is requested again, paced like every request, up to
        max_retries times; then TransientError: the caller must not treat the read as complete.
        `label` names the query in error messages."""
        page_size = max(1, min(page_size, API_PAGE_MAX))
        label = label or query
        offset, total = 0, None
        while True:
            page = self._full_page(query, offset, page_size, total, label)
            total = page.total if total is None else max(total, page.total)
            yield page
            offset += page.entries
            if offset >= min(total, API_TOTAL_MAX):
                return

    def _full_page(self, query: str, offset: int, size: int, total: int | None, label: str) -> ApiPage:
        """One page holding every entry it must hold: min(size, total - offset), where total is
        the largest totalResults seen so far (a glitching page may report 0)."""
        params = {"search_query": query, "sortBy": "submittedDate", "sortOrder": "ascending",
                  "start": offset, "max_results": size}
        for attempt in range(self.max_retries + 1):
            try:
                page = parse_api(self.get(self.api_url, params=params))
            except PermanentError as exc:
                raise PermanentError(f"arXiv API query for {label}, start={offset}: {exc}") from None
            known = page.total if total is None else max(total, page.total)
            expected = max(0, min(size, known - offset, API_TOTAL_MAX - offset))
            if page.entries >= expected:
                return page
            self.short_pages += 1
            log.warning("arXiv API query for %s, start=%d: %d of %d results, attempt %d; asking again",
                        label, offset, page.entries, expected, attempt + 1)
        raise TransientError(f"arXiv API query for {label}, start={offset}: a page came back short "
                             f"({page.entries} of {expected} results) after {self.max_retries + 1} attempts")

    def search_range(self, categories, start: dt.date, end: dt.date,
                     page_size: int = API_PAGE_MAX) -> Iterator[FeedItem]:
        """Papers submitted in [start, end] (whole days) to any of `categories` (query-API terms:
        'cs.LG', 'cs.*'; one string or several), oldest first, every page of them."""
        terms = [categories] if isinstance(categories, str) else list(categories)
        label = f"{', '.join(terms)} ({start}..{end})"
        for page in self.search(date_query(terms, start, end), page_size, label):
            yield from page.items

    # -- look-ups by id (feedback imports) --------------------------------------------------
    def fetch_ids(self, ids, chunk: int = 100) -> list[FeedItem]:
        """The papers with these arXiv ids (newest versions) from the query API's id_list, in
        requests of `chunk` ids; an id arXiv does not know is simply absent from the result.
        Paced and retried like every request."""
        ids = list(dict.fromkeys(ids))
        out: list[FeedItem] = []
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            params = {"id_list": ",".join(part), "start": 0, "max_results": len(part)}
            try:
                page = parse_api(self.get(self.api_url, params=params))
            except PermanentError as exc:
                raise PermanentError(f"arXiv API look-up of {len(part)} ids: {exc}") from None
            out.extend(page.items)
        return out

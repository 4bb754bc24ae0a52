"""Fetcher stage logic (Celery-free; tasks.py and the embedded runner call these).

fetch_pass: one announcement request for all categories; when announcement days were missed
  (per-category watermarks, see backfill.py and docs/ARCHITECTURE.md "Backfill") also paged query
  API requests for them. Everything is stored in ONE transaction (nothing of a bad response is
  kept), pass items created (each paper once), watermarks advanced, then score batches enqueued
  after commit. An empty feed (weekend, holiday) ends the pass as "empty" with the note "no
  announcement (<day>)" and leaves the previous digest in place. Requests go through the pacer
  (RedisPacer whenever REDIS_URL/BROKER_URL gives a Redis: one request per 3 s across processes).
Beat's start_pass and sweep (shared.lifecycle) also run on the fetch queue.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from shared import lifecycle, liveness, names, passes
from shared.arxiv import effective_type
from shared.arxiv_pacing import make_pacer
from shared.errors import PermanentError, TransientError
from shared.models import PASS_FETCHING, FetchWatermark, Pass, PassItem, utcnow
from shared.tasking import Handler

from .backfill import backfill_spans, fetch_backfill
from .client import ArxivClient, user_agent_for
from .ingest import insert_for, upsert_papers
from .records import FeedItem

log = logging.getLogger(__name__)


def arxiv_client(rt) -> ArxivClient:
    """A new arXiv client, to close when done (`with arxiv_client(rt) as client:`): paced by the
    process's pacer (memoised: Redis when rt.settings.redis_url is set, in distributed mode or
    REDIS_URL in embedded mode, else in-process), User-Agent from contact. Not kept between
    fetches: a fetch is a few requests a day, and the idle client (its TLS context holds the
    parsed CA bundle, about 3 MB) would outlive it for the rest of an embedded run's pass."""
    cfg = rt.config.fetch
    pacer = rt.memo("arxiv_pacer", lambda: make_pacer(rt.settings.redis_url, cfg.min_interval_seconds))
    return ArxivClient(rt.settings.arxiv_rss_url, rt.settings.arxiv_api_url, pacer,
                       user_agent_for(rt.config.contact), timeout=cfg.timeout_seconds,
                       max_retries=cfg.max_retries, backoff_cap=cfg.backoff_cap_seconds)


def _insert_items(s, rows: list[dict]) -> None:
    """Create pass items, ignoring ones that exist (a redelivered fetch adds nothing twice)."""
    if not rows:
        return
    # executemany of one cached statement (SQLAlchemy batches it as multi-row VALUES itself):
    # building a 1000-row VALUES clause per call compiled afresh every time.
    s.connection().execute(insert_for(s)(PassItem.__table__).on_conflict_do_nothing(), rows)


def _watermarks(s, categories) -> dict[str, dt.date | None]:
    marks = {m.category: m.last_day for m in s.scalars(select(FetchWatermark)
                                                        .where(FetchWatermark.category.in_(categories)))}
    return {cat: marks.get(cat) for cat in categories}


def _advance_watermarks(s, categories, day: dt.date) -> None:
    """Record `day` as ingested for `categories` (never moves a watermark back)."""
    for cat in categories:
        mark = s.get(FetchWatermark, cat)
        if mark is None:
            s.add(FetchWatermark(category=cat, last_day=day))
        elif mark.last_day < day:
            mark.last_day = day


def _backfill(rt, client, categories, day: dt.date | None) -> tuple[list[FeedItem], list[str], str | None]:
    """Download the missed days (see backfill.py). Returns (items, categories whose watermark may
    advance, note). A failed backfill stores nothing of its responses and keeps those categories'
    watermarks where they were, so the next pass tries again; today's feed is still published."""
    if day is None:
        return [], [], None
    with rt.session() as s:
        marks = _watermarks(s, categories)
    spans = backfill_spans(marks, day, rt.config.days_back)
    if not spans:
        return [], list(categories), None
    gap = f"{min(sp.start for sp in spans)}..{max(sp.end for sp in spans)}"
    try:
        items = fetch_backfill(client, spans, rt.config.fetch.api_page_size)
    except (PermanentError, TransientError) as exc:
        note = f"backfill of {', '.join(sp.category for sp in spans)} ({gap}) failed, retried next pass: {exc}"
        log.warning("%s", note)
        spanned = {sp.category for sp in spans}
        return [], [c for c in categories if c not in spanned], note
    return items, list(categories), f"backfill {gap}"


def _claim(rt, pass_id: int, owner: str) -> bool:
    """Take the pass's fetch (shared.passes.claim_fetch); a claim held by a process known to be
    dead (shared.liveness) is taken over at once, a live one is left to its holder."""
    with rt.session() as s:
        if passes.claim_fetch(s, pass_id, owner, liveness.LEASE_SECONDS):
            return True
        p = s.get(Pass, pass_id)
        holder = p.fetch_owner if p is not None and p.status == PASS_FETCHING else None
    if holder is None or not liveness.verdict(rt.settings.redis_url).dead(holder):
        if holder is not None:
            log.info("pass %d: being fetched by %s", pass_id, holder)
        return False
    with rt.session() as s:
        won = passes.claim_fetch(s, pass_id, owner, liveness.LEASE_SECONDS, dead_owner=holder)
    if won:
        log.info("pass %d: fetch taken over from %s (no longer running)", pass_id, holder)
    return won


def fetch_pass(rt, pass_id: int) -> None:
    """Fetch the day's announcements for a pass, plus a backfill of missed days, and store them in
    ONE transaction. Does nothing unless the pass is fetching and this call wins its fetch claim
    (a duplicate message on another fetcher does not download the day again). A bad feed raises
    PermanentError naming the categories; nothing of it is stored."""
    owner = liveness.owner_id()
    if not _claim(rt, pass_id, owner):
        return

    def renew(seconds=liveness.LEASE_SECONDS):
        with rt.session() as s:
            passes.renew_fetch(s, pass_id, owner, seconds)

    try:
        with liveness.hold_lease(renew):
            _fetch(rt, pass_id, owner)
    except BaseException:
        try:
            renew(None)  # give the claim up at once: a retry or another fetcher may take it
        except Exception as exc:
            log.warning("could not release the fetch claim: %s", type(exc).__name__)
        raise


def _fetch(rt, pass_id: int, owner: str) -> None:
    readers = rt.readers()
    categories = readers.categories()  # one fetch of the union serves every profile
    with arxiv_client(rt) as client:
        result = client.fetch_announcements(categories)
        items = result.items
        if not items:
            day = result.day.isoformat() if result.day else "today"
            with rt.session() as s:
                passes.no_announcement(s, pass_id, day)
            log.info("pass %d: no announcement (%s); previous digest left in place", pass_id, day)
            return
        extra, marked, note = _backfill(rt, client, categories, result.day)
    in_feed = {it.id for it in items}
    extra = [it for it in extra if it.id not in in_feed]  # the feed's copy wins (it knows its type)
    with rt.session() as s:
        p = s.get(Pass, pass_id, with_for_update=True)
        if p.status != PASS_FETCHING or p.fetch_owner != owner:
            return  # our claim was taken over (we stalled past its lease): the new holder stores
        stored = upsert_papers(s, items + extra)
        # A backfilled paper joins the pass only if it is news to the database (new, or a higher
        # version): what earlier passes or today's feed already gave is not added again.
        fresh = set(stored.new) | set(stored.updated)
        extra = [it for it in extra if it.id in fresh]
        now = utcnow()
        _insert_items(s, [dict(pass_id=pass_id, paper_id=it.id, version=it.version,
                               announce_type=effective_type(it, categories),
                               announced=it.announced or result.day, updated_at=now)
                          for it in items + extra])
        if result.day:
            _advance_watermarks(s, marked, result.day)
        ids = sorted({it.id for it in items + extra})
        if note:
            note = f"{note}: {len(extra)} papers of missed days added"
        work = passes.fetched(s, pass_id, len(ids), readers.slugs, day=result.day, note=note)
    log.info("pass %d: fetched %d papers for %s (%d backfilled)", pass_id, len(ids), result.day, len(extra))
    rt.send_all(work)


def fetch_failed(rt, exc: Exception, pass_id: int) -> None:
    """Record why the fetch failed; the pass ends as failed (the next trigger starts afresh)."""
    reason = f"cannot reach arXiv: {exc}" if isinstance(exc, TransientError) else f"arXiv response unusable: {exc}"
    with rt.session() as s:
        passes.fetch_failed(s, pass_id, reason)
    log.error("pass %d failed: %s", pass_id, reason)


HANDLERS = [
    Handler(names.START_PASS, lifecycle.start_pass, soft_time_limit=60, time_limit=90, max_retries=3,
            embedded_retries=0),
    Handler(names.FETCH_PASS, fetch_pass, soft_time_limit=1800, time_limit=1860, max_retries=5, backoff_base=10.0,
            on_give_up=fetch_failed, embedded_retries=0),
    # Not acked late: a sweep lost with its worker is simply the next sweep.
    Handler(names.SWEEP, lifecycle.sweep, acks_late=False, soft_time_limit=60, time_limit=90, max_retries=0),
]

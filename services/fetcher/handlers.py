"""Fetcher stage logic (Celery-free; tasks.py and the embedded runner call these).

fetch_pass: one announcement request for all categories, stored in ONE transaction (nothing of
  a bad response is kept), pass items created, then score batches enqueued after commit. An empty
  feed (weekend, holiday) ends the pass as "empty" and leaves the previous digest in place.
start_pass and sweep (pipeline.py) also run on the fetch queue.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.dialects import postgresql, sqlite

from shared import names, passes
from shared.arxiv_pacing import make_pacer
from shared.errors import TransientError
from shared.models import PASS_EMPTY, PASS_FAILED, PASS_FETCHING, PASS_SCORING, FetchWatermark, Pass, PassItem, utcnow
from shared.tasking import Handler

from .client import ArxivClient, user_agent_for
from .ingest import upsert_papers
from .pipeline import start_pass, sweep
from .rss import effective_type

log = logging.getLogger(__name__)


def arxiv_client(rt) -> ArxivClient:
    def build():
        cfg = rt.config.fetch
        pacer = make_pacer(rt.settings.redis_url, cfg.min_interval_seconds)
        return ArxivClient(rt.settings.arxiv_rss_url, rt.settings.arxiv_api_url, pacer,
                           user_agent_for(rt.config.contact), timeout=cfg.timeout_seconds,
                           max_retries=cfg.max_retries, backoff_cap=cfg.backoff_cap_seconds)
    return rt.memo("arxiv_client", build)


def _insert_items(s, rows: list[dict]) -> None:
    """Create pass items, ignoring ones that exist (a redelivered fetch adds nothing twice)."""
    if not rows:
        return
    dialect = s.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(PassItem)
    for i in range(0, len(rows), 1000):
        s.execute(ins.values(rows[i:i + 1000]).on_conflict_do_nothing())


def _watermark(s, categories, day: dt.date) -> None:
    for cat in categories:
        mark = s.get(FetchWatermark, cat)
        if mark is None:
            s.add(FetchWatermark(category=cat, last_day=day))
        elif mark.last_day < day:
            mark.last_day = day


def fetch_pass(rt, pass_id: int) -> None:
    """Fetch the day's announcements for a pass. Does nothing unless the pass is fetching."""
    with rt.session() as s:
        p = s.get(Pass, pass_id)
        if p is None or p.status != PASS_FETCHING:
            return
    categories = list(rt.config.categories)
    result = arxiv_client(rt).fetch_announcements(categories)
    items = result.items
    with rt.session() as s:
        if s.get(Pass, pass_id).status != PASS_FETCHING:
            return  # another delivery of this message got here first
        if not items:
            day = result.day.isoformat() if result.day else "today"
            passes.finish(s, pass_id, PASS_EMPTY, note=f"no announcement ({day})")
            log.info("pass %d: no announcement (%s); previous digest left in place", pass_id, day)
            return
        upsert_papers(s, items)
        now = utcnow()
        _insert_items(s, [dict(pass_id=pass_id, paper_id=it.id, version=it.version,
                               announce_type=effective_type(it, categories),
                               announced=it.announced or result.day, updated_at=now)
                          for it in items])
        if result.day:
            _watermark(s, categories, result.day)
        ids = sorted({it.id for it in items})
        passes.advance(s, pass_id, PASS_FETCHING, PASS_SCORING, day=result.day, fetched=len(ids))
    log.info("pass %d: fetched %d papers for %s", pass_id, len(ids), result.day)
    for task, kwargs in passes.score_batches(pass_id, ids):
        rt.dispatch(task, **kwargs)


def fetch_failed(rt, exc: Exception, pass_id: int) -> None:
    """Record why the fetch failed; the pass ends as failed (the next trigger starts afresh)."""
    reason = f"cannot reach arXiv: {exc}" if isinstance(exc, TransientError) else f"arXiv response unusable: {exc}"
    with rt.session() as s:
        passes.finish(s, pass_id, PASS_FAILED, from_status=PASS_FETCHING, error=reason)
    log.error("pass %d failed: %s", pass_id, reason)


HANDLERS = {
    names.START_PASS: Handler(start_pass, max_retries=3),
    names.FETCH_PASS: Handler(fetch_pass, max_retries=5, backoff_base=10.0, on_give_up=fetch_failed),
    names.SWEEP: Handler(sweep, max_retries=0),
}

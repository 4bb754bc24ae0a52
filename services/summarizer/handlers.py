"""Summarizer stage logic (Celery-free; tasks.py and the embedded runner call these).

Guarantees of summarize_paper(pass_id, paper_id):
- Never pays twice: a summary is keyed by (paper id, version, model, prompt hash, language,
  input mode); an existing one is reused by any pass, replica or redelivered message.
- One replica at a time per paper: a lease (owner + expiry) on the summary row is taken in the
  database before the provider is called; an expired lease (crashed worker) is taken over.
- The global rate limit (requests and tokens per minute, shared through Redis) is respected;
  a wait longer than a few seconds becomes a Celery countdown, not a sleeping worker.
- 429/5xx/timeouts are retried by the task layer (Celery countdown; the SDK does not retry);
  a 429 also pauses the shared limiter for its Retry-After. After the retry budget, or at once
  for a permanent error (empty answer, 4xx), the paper is marked failed with the reason; the
  next pass tries it again.
- daily_token_budget: once today's tokens reach it, no new call is made; the paper is marked
  `budget` with the numbers. Prompt and completion tokens are stored per summary and per pass.
- When no paper of the pass is pending any more, exactly one process moves the pass on to
  publishing.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from shared import names, passes
from shared.errors import TransientError
from shared.models import (PASS_PUBLISHING, PASS_SUMMARIZING, SUM_BUDGET, SUM_DONE, SUM_FAILED, SUM_PENDING,
                           SUM_SKIPPED, Paper, Pass, PassItem, Summary, utcnow)
from shared.tasking import Handler, database_outage

from . import llm, prompt
from .parse import parse_summary

log = logging.getLogger(__name__)
MAX_INLINE_WAIT = 5.0  # longer rate-limit waits are handed back to the broker as a countdown


def lease_owner() -> str:
    """host:pid:thread of the caller. Not rt.worker_id: a worker builds its runtime before
    forking its pool, so every child would share the parent's id."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _template(rt) -> str | None:
    ai = rt.config.ai_summary
    return rt.memo("prompt_template", lambda: prompt.load_template(ai.prompt_file, rt.settings.config_path.parent))


def summary_key(rt, paper: Paper) -> dict:
    """The columns that decide a summary's text. The version is in it, so a summary of an older
    version is never reused for a newer one; editing the prompt or the language re-summarises."""
    ai = rt.config.ai_summary
    return dict(paper_id=paper.id, version=paper.version, model=rt.settings.llm_model,
                prompt_hash=prompt.prompt_hash(_template(rt) or "", ai.language), language=ai.language,
                input_mode=ai.input)


def tokens_used_today(s) -> int:
    """LLM tokens paid for since 00:00 UTC, from the run records (passes opened today). Summary
    rows are not used: their updated_at also moves when an old summary is marked stale."""
    start = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(s.scalar(select(func.coalesce(func.sum(Pass.prompt_tokens + Pass.completion_tokens), 0))
                        .where(Pass.created_at >= start)) or 0)


def _limiter(rt):
    from .ratelimit import make_limiter

    ai = rt.config.ai_summary
    return rt.memo("llm_limiter", lambda: make_limiter(rt.settings.redis_url, ai.requests_per_minute,
                                                       ai.tokens_per_minute))


def _client(rt):
    return rt.memo("llm_client", lambda: llm.make_client(rt.settings.llm_base_url, rt.settings.llm_api_key,
                                                         rt.config.ai_summary.timeout))


def _body(rt, paper: Paper) -> str:
    """The text the model summarises: the abstract, or the PDF's text cut to max_input_tokens
    (downloaded through the shared arXiv pacer: the fetcher's 3 s spacing covers PDFs too).
    Extracted texts are kept per process for a few papers, so a task that comes back after a
    rate-limit countdown or a provider error does not download the PDF again."""
    ai = rt.config.ai_summary
    if ai.input != "fulltext":
        return paper.abstract
    from collections import OrderedDict

    from shared.arxiv_pacing import make_pacer

    from . import fulltext

    http = rt.memo("pdf_http", lambda: __import__("httpx").Client(follow_redirects=True))
    pacer = rt.memo("pdf_pacer", lambda: make_pacer(rt.settings.redis_url, rt.config.fetch.min_interval_seconds))
    return fulltext.pdf_text(http, pacer, f"{rt.settings.arxiv_pdf_url}/{paper.id}v{paper.version}",
                             rt.config.fetch.timeout_seconds, ai.max_input_tokens,
                             cache=rt.memo("fulltext_cache", OrderedDict))


def _claim(rt, s, item: PassItem, paper: Paper) -> Summary | None:
    """Decide this paper's fate in one transaction. Returns a finished summary to reuse; or
    None after either marking `item` budget/skipped or taking the lease (item stays pending).
    Raises TransientError(counts=False) while another worker holds an unexpired lease."""
    ai = rt.config.ai_summary
    key = summary_key(rt, paper)
    summ = s.scalars(select(Summary).filter_by(**key).with_for_update()).first()
    now = utcnow()
    if summ is not None and summ.status == "done":
        return summ
    off = passes.summaries_off_reason(rt.config, rt.settings, s.get(Pass, item.pass_id))
    if off is not None:  # e.g. this replica has no key: never call, say why
        item.summary_state, item.note = SUM_SKIPPED, off
        return None
    # ANY unexpired lease means a call is in flight, even one with our owner name (a duplicate
    # message in another thread of this process): the lease is given up on every error path.
    if summ is not None and summ.status == "leased" and summ.lease_expires_at and summ.lease_expires_at > now:
        wait = (summ.lease_expires_at - now).total_seconds()
        raise TransientError(f"{paper.id}: being summarized by {summ.lease_owner}", retry_after=min(wait, 60),
                             counts=False)
    if ai.daily_token_budget is not None:
        used = tokens_used_today(s)
        if used >= ai.daily_token_budget:
            item.summary_state = SUM_BUDGET
            item.note = f"{used} of {ai.daily_token_budget} tokens used today (UTC)"
            return None
    if summ is None:
        try:
            with s.begin_nested():
                summ = Summary(**key, status="leased")
                s.add(summ)
                s.flush()
        except IntegrityError:
            raise TransientError(f"{paper.id}: another worker is claiming it", retry_after=2, counts=False) from None
    # A failed summary (an earlier pass gave up) or an expired lease (a crashed worker) is taken over.
    summ.status, summ.lease_owner = "leased", lease_owner()
    summ.lease_expires_at = now + dt.timedelta(seconds=ai.lease_seconds)
    summ.attempts += 1
    item.updated_at = now  # the sweep leaves work in progress alone
    return None


def summarize_paper(rt, pass_id: int, paper_id: str) -> None:
    """Summarize one pending paper of a pass (see the module docstring). Raises TransientError
    (retry later; counts=False for waits) or PermanentError (give up: summary_failed)."""
    ai = rt.config.ai_summary
    with rt.session() as s:
        item = s.get(PassItem, (pass_id, paper_id))
        if item is None or item.summary_state != SUM_PENDING:
            return
        paper = s.get(Paper, paper_id)
        reuse = _claim(rt, s, item, paper)
        if reuse is not None:
            item.summary_state, item.summary_id, item.note = SUM_DONE, reuse.id, None
        state = item.summary_state if item.summary_state != SUM_PENDING else None
        key = summary_key(rt, paper)
    if state is not None:
        log.info("pass %d paper %s: summary %s", pass_id, paper_id, "reused" if state == SUM_DONE else state)
        maybe_publish(rt, pass_id)
        return

    try:
        # Everything slow that is not the request itself (imports, client, PDF) happens BEFORE
        # taking a rate-limit slot: the limiter spaces grants, and a grant that reaches the
        # provider late would share a provider second with the next one.
        client = _client(rt)
        messages = prompt.build_messages(paper.title, _body(rt, paper), ai.language, _template(rt))
        need = llm.estimate_messages_tokens(messages) + ai.max_tokens
        wait = _limiter(rt).acquire(need, max_wait=MAX_INLINE_WAIT)
        if wait > 0:
            raise TransientError("waiting for the shared LLM rate limit", retry_after=wait, counts=False)
        try:
            answer = llm.complete(client, rt.settings.llm_model, messages, ai.temperature, ai.max_tokens,
                                  json_mode=True)
            parsed = parse_summary(answer.text)
        except BaseException:
            _count_call(rt, key)  # a failed call may still have been billed: keep the count honest
            raise
    except BaseException as exc:
        if isinstance(exc, llm.RateLimited):
            # Every replica pauses, not only this task; the task comes back after the same delay.
            _limiter(rt).penalize(exc.retry_after if exc.retry_after is not None else 1.0)
        _release(rt, key, str(exc) or type(exc).__name__)
        raise
    _store(rt, key, pass_id, paper_id, answer, parsed)
    log.info("pass %d paper %s: summarized (%d+%d tokens)", pass_id, paper_id, answer.prompt_tokens,
             answer.completion_tokens)
    maybe_publish(rt, pass_id)


STORE_PATIENCE = 90.0  # seconds a paid answer waits for the database before it is given up


def _store(rt, key: dict, pass_id: int, paper_id: str, answer, parsed: dict) -> None:
    """Store a paid answer and count its call in one transaction. The answer has cost money, so a
    database outage does not throw it away: the write is retried here, in the worker, with
    backoff, for up to STORE_PATIENCE seconds (a retried task would pay the provider again)."""
    deadline = time.monotonic() + STORE_PATIENCE
    delay = 0.5
    while True:
        try:
            _store_once(rt, key, pass_id, paper_id, answer, parsed)
            return
        except Exception as exc:
            if database_outage(exc) is None or time.monotonic() + delay > deadline:
                raise
            log.warning("pass %d paper %s: database unavailable while storing a paid summary; retrying in "
                        "%.1fs", pass_id, paper_id, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _store_once(rt, key: dict, pass_id: int, paper_id: str, answer, parsed: dict) -> None:
    with rt.session() as s:
        summ = s.scalars(select(Summary).filter_by(**key)).one()
        summ.provider_calls += 1
        summ.status, summ.lease_owner, summ.lease_expires_at = "done", None, None
        summ.raw_text, summ.tldr, summ.sections = parsed["raw"], parsed["tldr"], parsed["sections"]
        summ.prompt_tokens, summ.completion_tokens, summ.error = answer.prompt_tokens, answer.completion_tokens, None
        s.flush()
        s.execute(update(PassItem).where(PassItem.pass_id == pass_id, PassItem.paper_id == paper_id)
                  .values(summary_state=SUM_DONE, summary_id=summ.id, note=None))
        s.execute(update(Pass).where(Pass.id == pass_id).values(
            prompt_tokens=Pass.prompt_tokens + answer.prompt_tokens,
            completion_tokens=Pass.completion_tokens + answer.completion_tokens))


def _count_call(rt, key: dict) -> None:
    """Best effort: the call's own error is the one worth reporting."""
    try:
        with rt.session() as s:
            s.execute(update(Summary).filter_by(**key).values(provider_calls=Summary.provider_calls + 1))
    except Exception as exc:
        log.warning("could not count a provider call: %s", type(exc).__name__)


def _release(rt, key: dict, error: str) -> None:
    """Give up our lease at once (a retry or a peer may take over), keeping the last error."""
    try:
        with rt.session() as s:
            s.execute(update(Summary).filter_by(**key, lease_owner=lease_owner(), status="leased")
                      .values(lease_expires_at=utcnow(), error=error[:1000]))
    except Exception as exc:  # the original error matters more; the lease expires anyway
        log.warning("could not release the summary lease: %s", type(exc).__name__)


def summary_failed(rt, exc: Exception, pass_id: int, paper_id: str) -> None:
    """After the retry budget (or a permanent error): mark the paper failed with the reason
    (pass_items.note, shown by `arxiv-bot status` and the digest). The summary row becomes
    `failed`, so the next pass tries again instead of reusing the failure."""
    reason = (str(exc) or type(exc).__name__)[:1000]
    with rt.session() as s:
        item = s.get(PassItem, (pass_id, paper_id))
        if item is None or item.summary_state != SUM_PENDING:
            return
        item.summary_state, item.note = SUM_FAILED, reason
        paper = s.get(Paper, paper_id)
        s.execute(update(Summary).filter_by(**summary_key(rt, paper)).where(Summary.status != "done")
                  .values(status="failed", lease_owner=None, lease_expires_at=None, error=reason))
    log.warning("pass %d paper %s: summary failed: %s", pass_id, paper_id, reason)
    maybe_publish(rt, pass_id)


def maybe_publish(rt, pass_id: int) -> None:
    """When no paper of the pass is pending, exactly one caller moves it to publishing."""
    with rt.session() as s:
        left = s.scalar(select(func.count()).select_from(PassItem)
                        .where(PassItem.pass_id == pass_id, PassItem.summary_state == SUM_PENDING))
        won = not left and passes.advance(s, pass_id, PASS_SUMMARIZING, PASS_PUBLISHING)
    if won:
        rt.dispatch(names.PUBLISH_PASS, pass_id=pass_id)


HANDLERS = {
    names.SUMMARIZE_PAPER: Handler(summarize_paper, backoff_base=5.0, backoff_cap=300.0, on_give_up=summary_failed,
                                   retries_from_config=lambda rt: rt.config.ai_summary.max_retries),
}

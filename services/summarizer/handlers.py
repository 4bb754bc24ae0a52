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

import logging
import time

from sqlalchemy import select, update

from shared import liveness, names, passes
from shared.errors import TransientError
from shared.reasons import public_note, reason_of
from shared.text import one_line, scrub_secrets
from shared.models import (SOURCE_ABSTRACT, SUM_DONE, SUM_FAILED, SUM_PENDING, SUMMARY_DONE, SUMMARY_FAILED, Paper,
                           Pass, Summary, SummaryJob)
from shared.tasking import Handler, database_outage

from . import llm, prompt
from .lease import call_started, claim, release, renewer
from .parse import parse_summary

log = logging.getLogger(__name__)
MAX_INLINE_WAIT = 5.0  # longer rate-limit waits are handed back to the broker as a countdown


def _template(rt) -> str | None:
    ai = rt.config.ai_summary
    return rt.memo("prompt_template", lambda: prompt.load_template(ai.prompt_file, rt.settings.config_path.parent))


def summary_key(rt, paper: Paper, language: str) -> dict:
    """The columns that decide a summary's text. The version is in it, so a summary of an older
    version is never reused for a newer one; editing the prompt or the language re-summarises."""
    ai = rt.config.ai_summary
    return dict(paper_id=paper.id, version=paper.version, model=rt.settings.llm_model,
                prompt_hash=prompt.prompt_hash(_template(rt) or "", language), language=language,
                input_mode=ai.input)


def _limiter(rt):
    from .ratelimit import make_limiter

    ai = rt.config.ai_summary
    return rt.memo("llm_limiter", lambda: make_limiter(rt.settings.redis_url, ai.requests_per_minute,
                                                       ai.tokens_per_minute))


def _client(rt):
    return rt.memo("llm_client", lambda: llm.make_client(rt.settings.llm_base_url, rt.settings.llm_api_key,
                                                         rt.config.ai_summary.timeout))


def _messages(rt, paper: Paper, language: str) -> tuple[list[dict], str]:
    """The chat messages for `paper` in `language` and the source the model reads ("abstract",
    "html", "pdf"). With input "fulltext" the whole prompt stays within max_input_tokens: the
    paper's sections get what the prompt's own text leaves (read once per paper version:
    fulltext.py, whatever the language)."""
    ai = rt.config.ai_summary

    def build(body: str) -> list[dict]:
        return prompt.build_messages(paper.title, body, language, _template(rt))

    if ai.input != "fulltext":
        return build(paper.abstract), SOURCE_ABSTRACT
    from . import fulltext

    # 16 tokens of slack: neutralise() may turn a few characters into wider ones.
    body, source = fulltext.body(rt, paper, ai.max_input_tokens - llm.estimate_messages_tokens(build("")) - 16)
    return build(body), source


def _record_input(rt, pass_id: int, key: dict, tokens: int) -> None:
    """The call's estimated prompt tokens, before the call: on the summary job (status shows them)
    and as the call in flight on our leased summary (counted, as an estimate, if this worker dies
    before the answer is stored; a worker killed while waiting up to MAX_INLINE_WAIT for its
    rate-limit slot is counted too: the estimate errs towards the higher cost)."""
    with rt.session() as s:
        s.execute(update(SummaryJob).where(SummaryJob.pass_id == pass_id, SummaryJob.paper_id == key["paper_id"],
                                           SummaryJob.language == key["language"])
                  .values(input_tokens=tokens))
        call_started(s, key, tokens)


def summarize_paper(rt, pass_id: int, paper_id: str, language: str | None = None) -> None:
    """Summarize one pending paper of a pass in one language: its summary job (see the module
    docstring). Raises TransientError (retry later; counts=False for waits) or PermanentError
    (give up: summary_failed)."""
    ai = rt.config.ai_summary
    language = language or ai.language
    with rt.session() as s:
        job = s.get(SummaryJob, (pass_id, paper_id, language))
        if job is None or job.state != SUM_PENDING:
            return
        paper = s.get(Paper, paper_id)
        key = summary_key(rt, paper, language)
        reuse = claim(rt, s, job, paper, key)
        if reuse is not None:
            job.state, job.summary_id, job.note = SUM_DONE, reuse.id, None
        state = job.state if job.state != SUM_PENDING else None
    if state is not None:
        log.info("pass %d paper %s: summary %s", pass_id, paper_id, "reused" if state == SUM_DONE else state)
        maybe_publish(rt, pass_id)
        return

    with liveness.hold_lease(renewer(rt, key)):  # our heartbeat renews the lease meanwhile
        answer, parsed, source = _call(rt, pass_id, paper, language, key)
        _store(rt, key, pass_id, paper_id, answer, parsed, source)
    log.info("pass %d paper %s: summarized (%d+%d tokens, read from %s)", pass_id, paper_id, answer.prompt_tokens,
             answer.completion_tokens, source)
    maybe_publish(rt, pass_id)


def _call(rt, pass_id: int, paper: Paper, language: str, key: dict):
    """One provider call under our lease: (answer, parsed summary, source). On any error the
    lease is released (and a 429 pauses every replica) before the error propagates."""
    ai = rt.config.ai_summary
    try:
        # Everything slow that is not the request itself (imports, client, PDF) happens BEFORE
        # taking a rate-limit slot: the limiter spaces grants, and a grant that reaches the
        # provider late would share a provider second with the next one.
        client = _client(rt)
        messages, source = _messages(rt, paper, language)
        # Recorded BEFORE the rate-limit slot is taken: a database write between the grant and
        # the request would make grants reach the provider late (and bunch up).
        _record_input(rt, pass_id, key, llm.estimate_messages_tokens(messages))
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
        release(rt, key, _detail(rt, exc))
        raise
    return answer, parsed, source


STORE_PATIENCE = 90.0  # seconds a paid answer waits for the database before it is given up


def _store(rt, key: dict, pass_id: int, paper_id: str, answer, parsed: dict, source: str) -> None:
    """Store a paid answer and count its call in one transaction. The answer has cost money, so a
    database outage does not throw it away: the write is retried here, in the worker, with
    backoff, for up to STORE_PATIENCE seconds (a retried task would pay the provider again)."""
    deadline = time.monotonic() + STORE_PATIENCE
    delay = 0.5
    while True:
        try:
            _store_once(rt, key, pass_id, paper_id, answer, parsed, source)
            return
        except Exception as exc:
            if database_outage(exc) is None or time.monotonic() + delay > deadline:
                raise
            log.warning("pass %d paper %s: database unavailable while storing a paid summary; retrying in "
                        "%.1fs", pass_id, paper_id, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _store_once(rt, key: dict, pass_id: int, paper_id: str, answer, parsed: dict, source: str) -> None:
    with rt.session() as s:
        summ = s.scalars(select(Summary).filter_by(**key)).one()
        summ.provider_calls += 1
        summ.status, summ.lease_owner, summ.lease_expires_at = SUMMARY_DONE, None, None
        summ.inflight_tokens = None
        summ.raw_text, summ.tldr, summ.sections = parsed["raw"], parsed["tldr"], parsed["sections"]
        summ.source = source
        summ.prompt_tokens, summ.completion_tokens, summ.error = answer.prompt_tokens, answer.completion_tokens, None
        s.flush()
        s.execute(update(SummaryJob).where(SummaryJob.pass_id == pass_id, SummaryJob.paper_id == paper_id,
                                           SummaryJob.language == key["language"])
                  .values(state=SUM_DONE, summary_id=summ.id, note=None))
        s.execute(update(Pass).where(Pass.id == pass_id).values(
            prompt_tokens=Pass.prompt_tokens + answer.prompt_tokens,
            completion_tokens=Pass.completion_tokens + answer.completion_tokens))


def _count_call(rt, key: dict) -> None:
    """Best effort: the call's own error is the one worth reporting."""
    try:
        with rt.session() as s:
            s.execute(update(Summary).filter_by(**key).values(provider_calls=Summary.provider_calls + 1,
                                                              inflight_tokens=None))
    except Exception as exc:
        log.warning("could not count a provider call: %s", type(exc).__name__)


def _detail(rt, exc: BaseException) -> str:
    """The error's own text for logs and summaries.error: one clean line, no secret."""
    return one_line(scrub_secrets(one_line(str(exc) or type(exc).__name__), rt.settings.llm_api_key), 1000)


def summary_failed(rt, exc: Exception, pass_id: int, paper_id: str, language: str | None = None) -> None:
    """After the retry budget (or a permanent error): mark the paper failed. The job's note (shown
    by `arxiv-bot status` and every public output) says why in our own words, from the error's
    reason code (shared/reasons.py); the provider's text, cleaned and scrubbed, goes only to the
    log and summaries.error. The summary row becomes `failed`, so the next pass tries again
    instead of reusing the failure."""
    reason = public_note(*reason_of(exc))
    detail = _detail(rt, exc)
    language = language or rt.config.ai_summary.language
    with rt.session() as s:
        job = s.get(SummaryJob, (pass_id, paper_id, language))
        if job is None or job.state != SUM_PENDING:
            return
        job.state, job.note = SUM_FAILED, reason
        paper = s.get(Paper, paper_id)
        s.execute(update(Summary).filter_by(**summary_key(rt, paper, language)).where(Summary.status != SUMMARY_DONE)
                  .values(status=SUMMARY_FAILED, lease_owner=None, lease_expires_at=None, error=detail))
    log.warning("pass %d paper %s: summary failed: %s (%s)", pass_id, paper_id, reason, detail)
    maybe_publish(rt, pass_id)


def maybe_publish(rt, pass_id: int) -> None:
    """When no paper of the pass is pending, exactly one caller moves it on (shared.passes)."""
    with rt.session() as s:
        work = passes.close_summarizing(s, pass_id)
    rt.send_all(work)


HANDLERS = [
    # Acks late: a worker killed mid-call leaves the message to be redelivered, and the expired
    # lease is taken over (at most one extra paid call per paper in flight).
    Handler(names.SUMMARIZE_PAPER, summarize_paper, soft_time_limit=600, time_limit=660, backoff_base=5.0,
            backoff_cap=300.0, on_give_up=summary_failed,
            retries_from_config=lambda rt: rt.config.ai_summary.max_retries),
]

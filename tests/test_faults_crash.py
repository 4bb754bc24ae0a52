"""Worker crashes (issue 8 req 3): real `arxiv-bot worker` processes SIGKILLed mid-pass.

One pass loses, in turn, its scorer while scoring, its only summarizer during a (slow) provider
call and its publisher while publishing. Killed workers take their unacknowledged messages with
them (Redis would hand them back only after the 6 h visibility timeout), so it is the sweep
(a real `arxiv-bot beat` and the idle workers: 2 s interval, 5 s stuck age, liveness keys that
expire 15 s after a dead process's last heartbeat) that brings the work back to the replacement
workers. (tests/test_recovery.py kills one worker per stage with a live peer and no replacement.) The pass still publishes, the slow paper is paid at most twice, every
other paper once, and no output is half-written.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.models import Summary
from tests.faults import LLM_KEY, check_invariants, engine, make_stack, passes, start_beat, wait_pass, wait_until
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin
from tests.test_recovery import holder


def _status(db_url: str) -> str | None:
    rows = passes(db_url)
    return rows[-1][1] if rows else None


def _leased(db_url: str) -> int:
    eng = engine(db_url)
    try:
        with eng.connect() as c:
            return len(c.execute(select(Summary.id).where(Summary.status == "leased")).all())
    finally:
        eng.dispose()


@pytest.mark.slow
def test_workers_killed_mid_pass(tmp_path, pg_url, redis_url):
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY, script=["slow"], slow_seconds=8) as llm:
        stack = make_stack(tmp_path, pg_url, arxiv, llm, broker_url=redis_url)
        try:
            stack.start_worker("fetcher")
            start_beat(stack)
            stack.cli("trigger")
            wait_until(lambda: _status(pg_url) == "scoring", 120, what="pass scoring")

            # Scorer: killed as soon as it has taken the batch (mid-scoring or mid-selection).
            scorer = stack.start_worker("scorer")
            wait_until(lambda: holder(stack, redis_url, "score:1:default") or _status(pg_url) != "scoring", 60, 0.05)
            scorer.kill()
            stack.start_worker("scorer")
            wait_until(lambda: _status(pg_url) == "summarizing", 120, what="selection after the scorer crash")

            # Summarizer: killed while the provider is answering the first paper (slowly).
            summarizer = stack.start_worker("summarizer")
            wait_until(lambda: _leased(pg_url), 60, what="a leased summary")
            summarizer.kill()
            stack.start_worker("summarizer")
            wait_until(lambda: _status(pg_url) == "publishing", 180, what="summaries after the summarizer crash")

            # Publisher: killed as soon as it has taken the publication.
            publisher = stack.start_worker("publisher")
            wait_until(lambda: holder(stack, redis_url, "publish:1:default") or _status(pg_url) != "publishing", 60,
                       0.05)
            publisher.kill()
            stack.start_worker("publisher")
            wait_pass(pg_url, timeout=120)
        finally:
            stack.stop()
        result = check_invariants(pg_url, stack.output_dir, llm, kills=1)
    assert result["ranked"] == 30
    assert result["states"]["done"] == 15
    assert sum(result["calls"].values()) in (15, 16)  # the killed call may have been answered too
    logs = "".join(p.read_text() for p in stack.tmp.glob("worker-*.log"))
    assert "sweep: pass" in logs and "re-enqueued" in logs  # the sweep did the rescue

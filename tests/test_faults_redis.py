"""Redis restarted mid-pass (issue 8 req 1 and 4): Redis keeps nothing on disk here, so every queued
message (and the rate-limit state) is lost. Workers and beat reconnect, the sweep (2 s interval,
5 s stuck age; beat or an idle worker) re-enqueues what the database says is unfinished, and the pass completes with no
paper paid twice.

The Redis restarted is this test's own redis-server (conftest's `private_redis`), so tests
running at the same time on the shared Redis are not disturbed.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.models import SummaryJob
from tests.faults import LLM_KEY, check_invariants, engine, make_stack, passes, start_beat, wait_pass, wait_until
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin


def _done(db_url: str) -> int:
    eng = engine(db_url)
    try:
        with eng.connect() as c:
            return len(c.execute(select(SummaryJob.paper_id).where(SummaryJob.state == "done")).all())
    finally:
        eng.dispose()


@pytest.mark.slow
def test_redis_restart_mid_pass(tmp_path, pg_url, private_redis):
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY, latency=0.5) as llm:
        stack = make_stack(tmp_path, pg_url, arxiv, llm, broker_url=private_redis.url)
        try:
            stack.start_all()
            start_beat(stack)
            stack.cli("trigger")
            wait_until(lambda: passes(pg_url)[-1][1] == "summarizing" and _done(pg_url) >= 2, 120,
                       what="summaries under way")
            private_redis.restart()
            lost_at = _done(pg_url)
            wait_pass(pg_url, timeout=180)
        finally:
            stack.stop()
        result = check_invariants(pg_url, stack.output_dir, llm)
    assert lost_at < 15  # the restart did hit the pass mid-way
    assert result["states"]["done"] == 15
    logs = "".join(p.read_text() for p in stack.tmp.glob("worker-*.log"))
    assert "sweep: pass 1 (summarizing): re-enqueued" in logs

"""A whole embedded pass inside the test process (arxiv_bot.embedded.run_pass, what `arxiv-bot run`
calls), against the arXiv and LLM stand-ins over HTTP on a real SQLite database. The same stage
handlers and pass transitions as the workers; in-process, so the mutation check (tests/mutate.py)
sees every function it reaches. Asserts the pass's outcome row by row: every transition taken
once, the selection, the summaries (one provider call each, reused by the next pass), the
publication.
"""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from shared.models import (PASS_PUBLISHED, SUM_DONE, SUM_SKIPPED, SUMMARY_DONE, Pass, PassItem, Publication,
                           Summary)
from tests.faults import LLM_KEY, make_stack
from tests.standins.arxiv import ArxivStandin
from tests.standins.arxiv_feeds import DEFAULT_DAY, load_day, listed_in
from tests.standins.llm import LLMStandin


def dc_items() -> int:
    """cs.DC's feed on the recorded day: every item with a cs.DC category (from the recording)."""
    return sum(1 for it in load_day(DEFAULT_DAY).items if any(listed_in(c, {"cs.dc"}) for c in it.categories))


@pytest.fixture
def embedded(tmp_path, sqlite_url):
    """run(no_summaries=False) -> (pass row, items) after one in-process pass."""
    from arxiv_bot.embedded import run_pass
    from shared.db import make_engine, session_factory
    from shared.runtime import set_runtime
    from shared.settings import load

    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY) as llm:
        # One category and a short digest: the whole pass takes seconds (the mutation check runs it often).
        stack = make_stack(tmp_path, sqlite_url, arxiv, llm, categories=["cs.DC"], max_papers=6,
                           ai_summary={"max_papers_to_summarize": 3})
        config, settings = load(stack.env["ARXIV_BOT_CONFIG"], {**stack.env, "BROKER_URL": "", "REDIS_URL": ""})
        engine = make_engine(sqlite_url)
        S = session_factory(engine)

        def run(no_summaries: bool = False):
            assert run_pass(config, settings, no_summaries=no_summaries, quiet=True) == 0
            with S() as s:
                p = s.scalars(select(Pass).order_by(Pass.id.desc())).first()
                items = list(s.scalars(select(PassItem).where(PassItem.pass_id == p.id)))
                return p, items
        try:
            yield run, S, llm, stack
        finally:
            set_runtime(None)
            engine.dispose()


def chat_calls(llm) -> int:
    return sum(1 for _, path, _, status in llm.requests if path.endswith("/chat/completions") and status == 200)


def test_embedded_pass_in_process(embedded):
    run, S, llm, stack = embedded
    p, items = run()
    assert (p.status, p.active, p.error) == (PASS_PUBLISHED, None, None)
    assert p.day.isoformat() == "2024-11-28" and p.finished_at is not None
    assert p.fetched == len(items) == dc_items() and all(it.scored for it in items)
    ranked = sorted((it for it in items if it.rank is not None), key=lambda it: it.rank)
    assert [it.rank for it in ranked] == list(range(1, 7)) and p.selected == 6
    assert p.candidates == sum(it.candidate for it in items) >= 6
    assert [it.summary_state for it in ranked] == [SUM_DONE] * 3 + [None] * 3  # the best scored get them
    assert chat_calls(llm) == 3
    with S() as s:
        sums = list(s.scalars(select(Summary)))
        assert len(sums) == 3 and all(x.status == SUMMARY_DONE and x.provider_calls == 1 and x.lease_owner is None
                                       and x.lease_expires_at is None for x in sums)
        assert p.prompt_tokens == sum(x.prompt_tokens for x in sums) > 0
        assert s.scalar(select(func.count()).select_from(Publication).where(Publication.pass_id == p.id)) == 1
    papers = json.loads((stack.output_dir / "papers.json").read_text())
    assert [x["id"] for x in papers] == [it.paper_id for it in ranked]

    # The same day again: a new pass, the same digest, every summary reused (no provider call).
    again, items2 = run()
    assert again.id == p.id + 1 and again.status == PASS_PUBLISHED
    assert chat_calls(llm) == 3 and again.prompt_tokens == 0
    assert {it.paper_id: it.summary_state for it in items2 if it.rank} == \
        {it.paper_id: it.summary_state for it in ranked}
    with S() as s:
        assert s.scalar(select(func.count()).select_from(Summary)) == 3
        assert s.scalar(select(func.count()).select_from(Pass).where(Pass.active == 1)) == 0

    # --no-summaries: the digest says why, nothing is called.
    off, items3 = run(no_summaries=True)
    assert off.status == PASS_PUBLISHED and off.no_summaries and chat_calls(llm) == 3
    top = sorted((it for it in items3 if it.rank), key=lambda it: it.rank)[:3]
    assert all(it.summary_state == SUM_SKIPPED and "--no-summaries" in it.note for it in top)

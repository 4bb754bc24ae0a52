"""A whole embedded pass inside the test process (arxiv_bot.embedded.run_pass, what `arxiv-bot run`
calls), against the arXiv and LLM stand-ins over HTTP on a real SQLite database. The same stage
handlers and pass transitions as the workers; in-process, so the mutation check (tests/mutate.py)
sees every function it reaches. Asserts the pass's outcome row by row: every transition taken
once, the selection, the summaries (one provider call each), the publication, and a second pass
over the same day with summaries off (the same digest, the reason, no call).
"""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from shared.models import (ITEM_WANTS_SUMMARY, PASS_PUBLISHED, SUM_DONE, SUM_SKIPPED, SUMMARY_DONE, Pass,
                           PassItem, PassProfile, ProfileItem, Publication, Summary, SummaryJob)
from tests.faults import LLM_KEY, make_stack
from tests.standins.arxiv import ArxivStandin
from tests.standins.arxiv_feeds import DEFAULT_DAY, load_day, listed_in
from tests.standins.llm import LLMStandin


def dc_items() -> int:
    """cs.DC's feed on the recorded day: every item with a cs.DC category (from the recording)."""
    return sum(1 for it in load_day(DEFAULT_DAY).items if any(listed_in(c, {"cs.dc"}) for c in it.categories))


@pytest.fixture
def embedded(tmp_path, sqlite_url):
    """run(no_summaries=False) -> the pass row after one in-process pass."""
    from arxiv_bot.embedded import run_pass
    from shared import liveness
    from shared.db import make_engine, session_factory
    from shared.runtime import set_runtime
    from shared.settings import load

    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY) as llm:
        # One category and a short digest: the whole pass takes seconds (the mutation check runs it often).
        stack = make_stack(tmp_path, sqlite_url, arxiv, llm, categories=["cs.DC"], max_papers=6,
                           ai_summary={"max_papers_to_summarize": 3, "input": "abstract"})
        config, settings = load(stack.env["ARXIV_BOT_CONFIG"], {**stack.env, "BROKER_URL": "", "REDIS_URL": ""})
        engine = make_engine(sqlite_url)
        S = session_factory(engine)

        def run(no_summaries: bool = False) -> Pass:
            assert run_pass(config, settings, no_summaries=no_summaries, quiet=True) == 0
            with S() as s:
                return s.scalars(select(Pass).order_by(Pass.id.desc())).first()
        try:
            yield run, S, llm, stack
        finally:
            set_runtime(None)
            liveness.stop()  # run_pass started this process's heartbeat: later tests in this process expect none
            engine.dispose()


def chat_calls(llm) -> int:
    return sum(1 for _, path, _, status in llm.requests if path.endswith("/chat/completions") and status == 200)


def digest(S, pass_id: int) -> list[ProfileItem]:
    with S() as s:
        return list(s.scalars(select(ProfileItem).where(ProfileItem.pass_id == pass_id,
                                                        ProfileItem.profile == "default")
                              .order_by(ProfileItem.rank)))


def test_embedded_pass_in_process(embedded):
    run, S, llm, stack = embedded
    p = run()
    assert (p.status, p.active, p.error) == (PASS_PUBLISHED, None, None)
    assert p.day.isoformat() == "2024-11-28" and p.finished_at is not None
    with S() as s:
        fetched = s.scalar(select(func.count()).select_from(PassItem).where(PassItem.pass_id == p.id))
        prof = s.get(PassProfile, (p.id, "default"))
    assert p.fetched == fetched == dc_items()
    assert (prof.scored, prof.published, prof.selected) == (True, True, 6) and prof.candidates >= 6
    ranked = digest(S, p.id)
    assert [it.rank for it in ranked] == list(range(1, 7))
    assert [it.summary_state for it in ranked] == [ITEM_WANTS_SUMMARY] * 3 + [None] * 3  # the best scored
    assert chat_calls(llm) == 3
    with S() as s:
        jobs = list(s.scalars(select(SummaryJob).where(SummaryJob.pass_id == p.id)))
        assert sorted(j.paper_id for j in jobs) == sorted(it.paper_id for it in ranked[:3])
        assert all(j.state == SUM_DONE and j.summary_id for j in jobs)
        sums = list(s.scalars(select(Summary)))
        assert len(sums) == 3 and all(x.status == SUMMARY_DONE and x.provider_calls == 1 and x.lease_owner is None
                                      and x.lease_expires_at is None for x in sums)
        assert p.prompt_tokens == sum(x.prompt_tokens for x in sums) > 0
        assert s.scalar(select(func.count()).select_from(Publication).where(Publication.pass_id == p.id)) == 1
    papers = json.loads((stack.output_dir / "papers.json").read_text())
    assert [x["id"] for x in papers] == [it.paper_id for it in ranked]
    # Held for the pass no longer than needed (issue 16): the day index is dropped when scoring
    # ends, the arXiv client (its TLS context) closed with the fetch; only the pacer stays.
    from shared.runtime import get_runtime

    cache = get_runtime().cache
    assert cache["scorer.day"] == {} and "arxiv_pacer" in cache
    assert not any(type(v).__name__ == "ArxivClient" for v in cache.values())

    # The same day again, --no-summaries: a new pass publishes the day's digest again (the same
    # papers: it is the same day), with the reason instead of summaries and no provider call.
    off = run(no_summaries=True)
    assert off.id == p.id + 1 and off.status == PASS_PUBLISHED and off.no_summaries
    again = digest(S, off.id)
    assert [it.paper_id for it in again] == [it.paper_id for it in ranked]
    assert chat_calls(llm) == 3
    assert all(it.summary_state == SUM_SKIPPED and "--no-summaries" in it.note for it in again[:3])
    with S() as s:
        assert s.scalar(select(func.count()).select_from(Pass).where(Pass.active == 1)) == 0

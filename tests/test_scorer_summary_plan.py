"""Planning a pass's summaries for every profile at once (services/scorer/summary_plan.py), on a
real database: one job per (paper, language); the daily budget granted round-robin over the
profiles by rank, not first come; who got nothing is recorded; existing summaries cost nothing."""
from __future__ import annotations

import datetime as dt

import pytest

from services.scorer.summary_plan import plan_jobs
from shared.config import parse_config
from shared.db import make_engine, session_factory
from shared.models import (ITEM_WANTS_SUMMARY, SUM_BUDGET, SUM_PENDING, Base, Paper, Pass, PassProfile, ProfileItem,
                           Summary, SummaryJob)
from shared.profiles import load

DAY = dt.date(2024, 11, 28)


def _world(db_url, picks: dict[str, list[str]], languages: dict[str, str], budget: int | None, reuse=()):
    """A pass whose profiles picked `picks` (ids by rank, each wanting a summary)."""
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    cfg = parse_config({"profiles": {slug: {"language": languages.get(slug, "en")} for slug in picks},
                        "ai_summary": {"daily_token_budget": budget, "max_tokens": 1000, "input": "abstract"}})
    S = session_factory(engine)
    with S.begin() as s:
        p = Pass(status="summarizing", active=1, day=DAY)
        s.add(p)
        s.flush()
        ids = sorted({pid for ps in picks.values() for pid in ps})
        s.add_all(Paper(id=pid, version=1, title=f"Paper {pid}", abstract="word " * 400, authors=["A"],
                        primary_category="cs.LG", categories=["cs.LG"]) for pid in ids)
        s.flush()
        for slug, ps in picks.items():
            s.add(PassProfile(pass_id=p.id, profile=slug, scored=True, candidates=len(ps), selected=len(ps),
                              published=False))
            for rank, pid in enumerate(ps, 1):
                s.add(ProfileItem(pass_id=p.id, profile=slug, paper_id=pid, rank=rank, score=1.0, announce_type="new",
                                  updated=False, summary_state=ITEM_WANTS_SUMMARY, language=languages.get(slug, "en")))
        for pid, lang in reuse:
            s.add(Summary(paper_id=pid, version=1, model="m", prompt_hash="h", language=lang, input_mode="abstract",
                          status="done", raw_text="x"))
        pass_id = p.id
    return engine, S, cfg, pass_id


@pytest.mark.parametrize("budget", [None, 2500])
def test_one_job_per_paper_and_language(tmp_path, budget):
    picks = {"a": ["p1", "p2", "p3"], "b": ["p2", "p1", "p4"], "c": ["p1"]}
    engine, S, cfg, pass_id = _world(f"sqlite:///{tmp_path / 'db'}", picks, {"c": "zh"}, None)
    with S.begin() as s:
        jobs = plan_jobs(s, pass_id, load(cfg), cfg.ai_summary, "m")
    # Round-robin by rank: a1, b1, c1, a2, b2, a3, b3 -> deduplicated per (paper, language).
    assert jobs == [("p1", "en"), ("p2", "en"), ("p1", "zh"), ("p3", "en"), ("p4", "en")]
    with S() as s:
        rows = {(j.paper_id, j.language): (j.state, j.priority) for j in s.query(SummaryJob)}
    assert rows == {("p1", "en"): (SUM_PENDING, 0), ("p2", "en"): (SUM_PENDING, 1), ("p1", "zh"): (SUM_PENDING, 2),
                    ("p3", "en"): (SUM_PENDING, 3), ("p4", "en"): (SUM_PENDING, 4)}
    engine.dispose()


def test_budget_is_shared_round_robin_and_the_starved_are_named(tmp_path):
    # Each call is estimated at ~500 (abstract) + 600 + 1000 tokens: a budget of 5,000 grants three.
    picks = {"a": ["a1", "a2", "a3", "a4"], "b": ["b1", "b2", "b3"], "c": ["c1", "c2"], "d": ["d1"]}
    engine, S, cfg, pass_id = _world(f"sqlite:///{tmp_path / 'db'}", picks, {}, 5000, reuse=[("d1", "en")])
    with S.begin() as s:
        jobs = plan_jobs(s, pass_id, load(cfg), cfg.ai_summary, "m")
    # First come would give a1, a2, a3; round-robin gives every profile its best paper first,
    # and d1 is free (its summary exists).
    assert jobs == [("a1", "en"), ("b1", "en"), ("c1", "en"), ("d1", "en")]
    with S() as s:
        refused = {j.paper_id: j.note for j in s.query(SummaryJob).filter(SummaryJob.state == SUM_BUDGET)}
        notes = {r.profile: r.note for r in s.query(PassProfile)}
    assert set(refused) == {"a2", "a3", "a4", "b2", "b3", "c2"}
    assert all("reached the budget of 5000" in n for n in refused.values())
    assert notes == {"a": None, "b": None, "c": None, "d": None}  # everyone got something
    engine.dispose()


def test_a_profile_that_gets_nothing_is_told_why(tmp_path):
    picks = {"first": ["x1", "x2"], "second": ["y1", "y2"]}
    engine, S, cfg, pass_id = _world(f"sqlite:///{tmp_path / 'db'}", picks, {}, 1500)
    with S.begin() as s:
        jobs = plan_jobs(s, pass_id, load(cfg), cfg.ai_summary, "m")
    assert jobs == [("x1", "en")]
    with S() as s:
        notes = {r.profile: r.note for r in s.query(PassProfile)}
    assert notes["first"] is None
    assert notes["second"] == "daily token budget reached: none of its 2 papers to summarize got a summary"
    engine.dispose()

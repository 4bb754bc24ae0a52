"""The fetcher through the real CLI (`arxiv-bot run`, embedded mode), against the arXiv and LLM
stand-ins over HTTP: which papers reach the digest per announce type, replacements, empty days,
bad responses and retries. Expectations are computed from the raw recorded files.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from shared.models import Paper, Pass, PaperVersion, Summary
from tests.procs import Stack, write_config
from tests.standins import arxiv_feeds as feeds
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin, _title_of

CATS = ["cs.AI", "cs.CL", "cs.DC", "cs.LG"]
QUANT_DAY = feeds.DATA / "rss" / "rss2_2025-04-28_quant-ph_81items_all_announce_types.xml"
LLM_KEY = "sk-test-fetcher-service"
# Words nearly every abstract has: the digest then holds every candidate, so the candidate
# set itself is visible in papers.json.
EVERYTHING = ["the", "of", "and", "a", "we", "in", "to", "for", "is", "on", "with", "this"]


def make_stack(tmp_path: Path, arxiv: ArxivStandin, llm: LLMStandin | None = None, name: str = "run",
               **cfg) -> Stack:
    home = tmp_path / name
    home.mkdir()
    cfg.setdefault("exclude_keywords", [])  # the project config excludes some topics; these tests count
    config = write_config(home, ai_summary={"requests_per_minute": 1200, "tokens_per_minute": 10_000_000}, **cfg)
    env = {"ARXIV_BOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{home / 'db.sqlite'}",
           "OUTPUT_DIR": str(home / "output"), "ARXIV_RSS_URL": arxiv.rss_url, "ARXIV_API_URL": arxiv.api_url,
           "LLM_BASE_URL": llm.base_url if llm else "http://127.0.0.1:9/v1", "LLM_API_KEY": LLM_KEY if llm else "",
           "BROKER_URL": "", "REDIS_URL": ""}
    return Stack(home, env)


def db(stack: Stack):
    return create_engine(stack.env["DATABASE_URL"])


def stored_papers(stack: Stack) -> dict[str, int]:
    engine = db(stack)
    with engine.connect() as conn:
        rows = dict(conn.execute(select(Paper.id, Paper.version)).all())
    engine.dispose()
    return rows


def digest(stack: Stack) -> list[dict]:
    return json.loads((stack.output_dir / "papers.json").read_text())


def test_digest_candidates_are_the_configured_primaries(tmp_path):
    day = feeds.load_day(feeds.DEFAULT_DAY)
    want = {it.id for it in day.items if it.type == "new" and it.categories[0] in CATS}
    relevant = {it.id for it in day.items if set(it.categories) & set(CATS)}
    assert len(want) == 132
    with ArxivStandin() as arxiv:
        stack = make_stack(tmp_path, arxiv, categories=CATS, keywords=EVERYTHING, max_papers=1000)
        res = stack.cli("run", "--no-summaries")
        assert "published 2024-11-28: 376 papers fetched, 132 candidates, 132 in the digest" in res.stdout
        assert [r[1] for r in arxiv.requests] == ["/rss/cs.AI+cs.CL+cs.DC+cs.LG"]
        assert arxiv.user_agents == ["arxiv-bot/0.1 (+https://github.com/arxiv-bot/arxiv-bot)"]
    papers = digest(stack)
    assert {p["id"] for p in papers} == want and len(papers) == 132
    assert all(p["announce_type"] == "new" and p["primary_category"] in CATS for p in papers)
    # Stored once each, however many configured categories list it.
    stored = stored_papers(stack)
    assert set(stored) == relevant and len(stored) == 376
    crossed = [it for it in day.items if len(set(it.categories) & set(CATS)) >= 2]
    assert len(crossed) > 50
    twice = next(it for it in crossed if it.id in want)  # e.g. cs.AI paper also listed in cs.CL, cs.LG
    assert [p["id"] for p in papers].count(twice.id) == 1
    entry = next(p for p in papers if p["id"] == twice.id)
    assert entry["categories"] == twice.categories and entry["abstract"] == " ".join(twice.abstract.split())


@pytest.mark.parametrize("types", [["new", "cross", "replace", "replace-cross"], ["cross", "replace-cross"]])
def test_announce_types_select_the_digest(tmp_path, types):
    raw = Counter(it.type for it in feeds.load_day(QUANT_DAY).items)
    assert set(raw) == {"new", "cross", "replace", "replace-cross"}
    with ArxivStandin(day_file=QUANT_DAY) as arxiv:
        stack = make_stack(tmp_path, arxiv, categories=["quant-ph"], keywords=EVERYTHING, max_papers=1000,
                           announce_types=types)
        stack.cli("run", "--no-summaries")
    got = Counter(p["announce_type"] for p in digest(stack))
    assert got == {t: raw[t] for t in types}
    assert len(stored_papers(stack)) == 81  # every type is stored; the config picks the digest


def test_replacement_updates_the_paper_and_is_summarized_again(tmp_path):
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY) as llm:
        stack = make_stack(tmp_path, arxiv, llm, announce_types=["new", "replace"])
        stack.cli("run")
        day1 = digest(stack)
        summarized = [p for p in day1 if p["summary"]]
        assert len(summarized) == 15
        bumped = {p["id"]: p["version"] + 1 for p in summarized[:3]}
        calls_before = len([r for r in llm.requests if r[1].endswith("/chat/completions")])

        day2 = feeds.write_replacement_day(feeds.DEFAULT_DAY, tmp_path / "day2.xml", bumped,
                                           "Fri, 29 Nov 2024 00:00:00 -0500")
        arxiv.set_day(day2)
        res = stack.cli("run")
        assert "published 2024-11-29: 3 papers fetched" in res.stdout
        new_calls = [r for r in llm.requests if r[1].endswith("/chat/completions")][calls_before:]
    titles = {p["title"] for p in summarized[:3]}
    assert sorted(_title_of(r[2]) for r in new_calls if r[3] == 200) == sorted(titles)

    papers = digest(stack)
    assert {p["id"]: p["version"] for p in papers} == bumped
    for p in papers:
        assert p["announce_type"] == "replace" and p["published"] == "2024-11-29"
        assert p["pdf_url"] == f"https://arxiv.org/pdf/{p['id']}v{bumped[p['id']]}"
        assert p["summary"] and p["summary"]["sections"]["contributions"] == f"Contributions of {p['title']}: a new method."
    engine = db(stack)
    with engine.connect() as conn:
        assert conn.execute(select(Paper.id).where(Paper.id.in_(bumped))).all().__len__() == 3
        versions = Counter(r.paper_id for r in conn.execute(select(PaperVersion.paper_id)
                                                            .where(PaperVersion.paper_id.in_(bumped))))
        assert versions == {i: 2 for i in bumped}  # history: old and new version
        sums = {(r.paper_id, r.version): r.stale for r in conn.execute(
            select(Summary.paper_id, Summary.version, Summary.stale).where(Summary.paper_id.in_(bumped)))}
    engine.dispose()
    assert sums == {**{(i, v - 1): True for i, v in bumped.items()}, **{(i, v): False for i, v in bumped.items()}}


def test_empty_day_keeps_the_previous_digest(tmp_path):
    with ArxivStandin() as arxiv:
        stack = make_stack(tmp_path, arxiv)
        stack.cli("run", "--no-summaries")
        before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in stack.output_dir.rglob("*") if f.is_file()}
        assert len(before) >= 7
        arxiv.empty_day = True
        res = stack.cli("run", "--no-summaries")
    assert res.returncode == 0 and res.stderr == ""
    assert "no announcement (2024-11-28)" in res.stdout and "previous digest is left in place" in res.stdout
    after = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in stack.output_dir.rglob("*") if f.is_file()}
    assert after == before
    engine = db(stack)
    with engine.connect() as conn:
        last = conn.execute(select(Pass.status, Pass.note).order_by(Pass.id.desc())).first()
    engine.dispose()
    assert last.status == "empty" and last.note == "no announcement (2024-11-28)"


BAD = {
    "error-feed": (dict(categories=["cs.AI", "astroph"]), None,
                   "arXiv feed for cs.AI+astroph: Bad archive 'astroph'. Valid archive names are: astro-ph, "),
    "unknown-category": (dict(categories=["cs.AI", "cs.XX"]), None, "arXiv feed for cs.AI+cs.XX: Bad category 'cs.XX'."),
    "html": ({}, "html", "arXiv feed for cs.AI+cs.CL+cs.DC+cs.LG: got an HTML page instead of XML"),
    "truncated": ({}, "truncated", "arXiv feed for cs.AI+cs.CL+cs.DC+cs.LG: truncated or malformed XML"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_response_is_one_line_and_stores_nothing(tmp_path, case):
    cfg, fault, message = BAD[case]
    with ArxivStandin() as arxiv:
        stack = make_stack(tmp_path, arxiv, **cfg)
        if fault:
            arxiv.fail_next(fault)
        res = stack.cli("run", "--no-summaries", check=False)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith("arxiv-bot: error: pass 1 failed: arXiv response unusable: " + message), lines[0]
    assert stored_papers(stack) == {}
    assert not (stack.output_dir / "papers.json").exists()


def test_503_then_success_honours_retry_after(tmp_path):
    with ArxivStandin() as arxiv:
        stack = make_stack(tmp_path, arxiv, contact="mailto:digest@example.org")
        arxiv.fail_next("503:2")
        res = stack.cli("run", "--no-summaries")
        rss = [t for t, path, _ in arxiv.requests if path.startswith("/rss/")]
        agents = set(arxiv.user_agents)
    assert "published 2024-11-28: 376 papers fetched" in res.stdout
    assert len(rss) == 2 and rss[1] - rss[0] >= 2.0  # waited at least what Retry-After said
    assert agents == {"arxiv-bot/0.1 (+mailto:digest@example.org)"}
    assert len(stored_papers(stack)) == 376


def test_retries_exhausted_is_a_clear_failure(tmp_path):
    with ArxivStandin() as arxiv:
        stack = make_stack(tmp_path, arxiv)  # fetch.max_retries = 2: three attempts
        arxiv.fail_next("503:0", "503:0", "503:0")
        res = stack.cli("run", "--no-summaries", check=False)
        attempts = [path for _, path, _ in arxiv.requests]
    assert res.returncode != 0 and attempts == ["/rss/cs.AI+cs.CL+cs.DC+cs.LG"] * 3
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "arxiv-bot: error: pass 1 failed: cannot reach arXiv: arXiv request http://127.0.0.1:"), lines
    assert "/rss/cs.AI+cs.CL+cs.DC+cs.LG failed: HTTP 503 after 3 attempts" in lines[0]
    assert stored_papers(stack) == {}

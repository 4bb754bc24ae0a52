"""End to end, per mode: the real CLI against the local arXiv and LLM stand-ins over HTTP.

Embedded: `arxiv-bot run` in one process. Distributed: four real `arxiv-bot worker` processes
over a real Redis, started by the test, and `arxiv-bot trigger --wait`. Both on SQLite and on
PostgreSQL. The two modes must publish the same digest from the same input.
"""
from __future__ import annotations

import json
import re

import feedparser
import pytest

from tests.procs import Stack, write_config
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin

CATS = {"cs.AI", "cs.CL", "cs.DC", "cs.LG"}
LLM_KEY = "sk-test-e2e-secret"


@pytest.fixture
def standins():
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY) as llm:
        yield arxiv, llm


def make_stack(tmp_path, db_url, standins, broker_url=None, name="run", **cfg) -> Stack:
    arxiv, llm = standins
    home = tmp_path / name
    home.mkdir()
    config = write_config(home, ai_summary={"requests_per_minute": 1200, "tokens_per_minute": 10_000_000}, **cfg)
    env = {"ARXIV_BOT_CONFIG": str(config), "DATABASE_URL": db_url, "OUTPUT_DIR": str(home / "output"),
           "ARXIV_RSS_URL": arxiv.rss_url, "ARXIV_API_URL": arxiv.api_url, "LLM_BASE_URL": llm.base_url,
           "LLM_API_KEY": LLM_KEY, "BROKER_URL": broker_url or "", "REDIS_URL": broker_url or ""}
    return Stack(home, env)


def chat_calls(llm) -> int:
    return sum(1 for r in llm.requests if r[1].endswith("/chat/completions") and r[3] == 200)


def check_outputs(out, llm_model="qwen-long") -> list[dict]:
    """Assert on the content of every published file; returns papers.json."""
    papers = json.loads((out / "papers.json").read_text())
    assert len(papers) == 30
    scores = [p["score"] for p in papers]
    assert scores == sorted(scores, reverse=True)
    for i, p in enumerate(papers):
        assert p["rank"] == i + 1
        assert p["announce_type"] == "new" and p["primary_category"] in CATS
        assert p["score"] >= 2.5 and p["matched"], p
        assert p["published"] == "2024-11-28"
        assert p["abs_url"] == f"https://arxiv.org/abs/{p['id']}"
        assert p["pdf_url"] == f"https://arxiv.org/pdf/{p['id']}v{p['version']}"
        assert isinstance(p["authors"], list) and p["authors"] and p["abstract"]
        if i < 15:
            assert p["summary"]["model"] == llm_model
            assert p["summary"]["sections"]["contributions"] == f"Contributions of {p['title']}: a new method."
            assert p["summary"]["tldr"].startswith("TL;DR:")
        else:
            assert p["summary"] is None
    ids = [p["id"] for p in papers]
    assert len(set(ids)) == 30

    readme = (out / "README.md").read_text()
    assert "**Total Papers Found**: 30" in readme
    assert "**Categories Monitored**: cs.AI, cs.CL, cs.DC, cs.LG" in readme
    numbered = re.findall(r"^### (\d+)\. \[(.+)\]\((https://arxiv\.org/abs/[^)]+)\)$", readme, re.M)
    assert [int(n) for n, _, _ in numbered] == list(range(1, 31))
    assert [u for _, _, u in numbered] == [p["abs_url"] for p in papers]
    assert readme.count(f"AI Summary (by {llm_model})") == 15
    assert f"**Score**: {papers[0]['score']:.1f}" in readme
    assert f"**ArXiv ID**: {papers[0]['id']}v{papers[0]['version']}" in readme

    feed = feedparser.parse((out / "feed.xml").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert [e.id for e in feed.entries[:30]] == ids
    assert feed.entries[0].title == papers[0]["title"]
    assert papers[0]["summary"]["sections"]["results"] in feed.entries[0].description
    for name in ("atom.xml",):
        assert not feedparser.parse((out / name).read_bytes()).bozo
    assert [i["id"] for i in json.loads((out / "feed.json").read_text())["items"][:30]] == ids
    html = (out / "index.html").read_text()
    assert papers[0]["abs_url"] in html and "<script" not in html
    assert (out / "archive" / "2024-11-28.md").read_text() == readme
    return papers


def _stable(readme: str) -> str:
    return re.sub(r"\*\*Last Updated\*\*: .*", "", readme)


def test_embedded_run(tmp_path, db_url, standins):
    arxiv, llm = standins
    stack = make_stack(tmp_path, db_url, standins)
    res = stack.cli("run")
    assert "published 2024-11-28: 376 papers fetched" in res.stdout
    assert "30 in the digest, 15 summarized" in res.stdout
    assert LLM_KEY not in res.stdout + res.stderr
    papers = check_outputs(stack.output_dir)
    assert chat_calls(llm) == 15
    rss_requests = [r for r in arxiv.requests if r[1].startswith("/rss/")]
    assert [r[1] for r in rss_requests] == ["/rss/cs.AI+cs.CL+cs.DC+cs.LG"]  # one request for all

    # A second pass over the same day pays for nothing and publishes the same digest.
    stack.cli("run")
    assert chat_calls(llm) == 15
    assert json.loads((stack.output_dir / "papers.json").read_text()) == papers
    status = json.loads(stack.cli("status", "--json").stdout)
    assert [p["status"] for p in status["passes"]] == ["published", "published"]
    assert status["totals"]["summaries"] == 15 and status["totals"]["prompt_tokens"] > 0


def test_embedded_without_key_says_summaries_skipped(tmp_path, sqlite_url, standins):
    stack = make_stack(tmp_path, sqlite_url, standins)
    stack.env["LLM_API_KEY"] = ""
    res = stack.cli("run")
    assert "AI summaries disabled: set DASHSCOPE_API_KEY" in res.stdout
    papers = json.loads((stack.output_dir / "papers.json").read_text())
    assert all(p["summary"] is None for p in papers)
    assert "AI summaries disabled: set DASHSCOPE" in (stack.output_dir / "README.md").read_text().replace("\\_", "_")
    assert chat_calls(standins[1]) == 0


@pytest.mark.slow
def test_distributed_matches_embedded(tmp_path, db_url, redis_url, standins, sqlite_url):
    arxiv, llm = standins
    stack = make_stack(tmp_path, db_url, standins, broker_url=redis_url, name="dist")
    try:
        stack.start_all(summarizers=2)
        res = stack.cli("trigger", "--wait", "--timeout", "180")
        assert "published 2024-11-28" in res.stdout, res.stdout
        papers = check_outputs(stack.output_dir)
        assert chat_calls(llm) == 15  # two replicas, no paper paid twice
        served_by = {w.service for w in stack.workers if "succeeded" in w.output() or "Task " in w.output()}
        assert {"fetcher", "scorer", "summarizer", "publisher"} <= served_by
    finally:
        stack.stop()

    # The same input through the embedded mode gives the same digest.
    ref = make_stack(tmp_path, sqlite_url, standins, name="ref")
    ref.cli("run")
    assert json.loads((ref.output_dir / "papers.json").read_text()) == papers
    assert _stable((ref.output_dir / "README.md").read_text()) == _stable((stack.output_dir / "README.md").read_text())

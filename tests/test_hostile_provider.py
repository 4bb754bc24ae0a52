"""Provider text is never trusted (issue 17 point 4): the real openai client against the LLM
stand-in answering hostile error bodies (terminal escape sequences, control characters, the API
key echoed back) and hostile answers.

What must hold: every published output (README.md, feeds, page, papers.json) says that a summary
failed and why in our own words (shared/reasons.py), never the provider's text; `arxiv-bot
status` shows only clean text; the logs keep the provider's text, cleaned and without the key.
"""
from __future__ import annotations

import json

import pytest

from services.summarizer import llm
from shared.reasons import REASONS, public_reason
from shared.text import clean, one_line, scrub_secrets
from tests.faults import LLM_KEY, make_stack
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin, hostile_error

OUTPUTS = ("README.md", "feed.xml", "atom.xml", "feed.json", "papers.json", "index.html")
# What no public output, status line or log line may carry (the key in full or in part, the
# escape sequences' remains, the provider's own words).
SECRETS = (LLM_KEY, LLM_KEY[:12])
ESCAPES = ("\x1b", "\x9b", "\x07", "pwned")


def _assert_clean(text: str, where: str, provider_words: bool = False) -> None:
    for bad in SECRETS + ESCAPES:
        assert bad not in text, (where, bad)
    if not provider_words:
        assert "Invalid request" not in text and "not allowed" not in text, where


def test_clean_strips_escape_sequences_and_controls():
    assert clean("a\x1b[31mred\x1b[0m\x1b]0;title\x07 b\x9b2Jc\x00d\r\ne\tf\x85") == "ared bcd\ne\tf"
    assert one_line("x\n\x1b[1my\x7f  z", 4) == "x y…"
    assert clean(None) == "" and clean("plain text") == "plain text"
    hostile = hostile_error(LLM_KEY)
    scrubbed = scrub_secrets(one_line(hostile), LLM_KEY)
    _assert_clean(scrubbed, "scrubbed", provider_words=True)
    assert "Invalid request" in scrubbed and "for this model" in scrubbed


def test_public_reason_never_shows_stored_provider_text():
    # A note stored by an earlier version (the provider's text after our prefix) is published as ours.
    old = f"LLM request rejected (HTTP 400): {hostile_error(LLM_KEY)}"
    assert public_reason(old) == "the LLM provider rejected the request (HTTP 400)"
    assert public_reason("LLM request rejected (HTTP 401): Incorrect API key provided: sk-x") == \
        "the LLM provider refused the API key (HTTP 401)"
    assert public_reason("empty answer") == REASONS["empty"]
    assert public_reason("\x1b[31manything else") == REASONS["internal"]
    assert public_reason(REASONS["timed_out"]) == REASONS["timed_out"]


@pytest.mark.parametrize("mode, code, status", [("hostile400", "rejected", 400), ("hostile500", "provider_error", 500),
                                                ("hostile429", "rate_limited", 429)])
def test_real_client_errors_are_coded_and_scrubbed(mode, code, status):
    with LLMStandin(api_key=LLM_KEY, mode=mode) as standin:
        client = llm.make_client(standin.base_url, LLM_KEY, timeout=20)
        with pytest.raises(Exception) as info:
            llm.complete(client, "m", [{"role": "user", "content": "<title>T</title>"}], 0.3, 100, json_mode=True)
    exc = info.value
    assert (exc.reason_code, exc.http_status) == (code, status)
    _assert_clean(str(exc), "message", provider_words=True)
    assert "Invalid request" in str(exc)  # the provider's words stay for the logs


def test_wrong_key_echoed_by_the_provider_is_never_shown():
    other = "sk-other-key-that-the-provider-echoes-0123456789"
    with LLMStandin(api_key=LLM_KEY) as standin:
        client = llm.make_client(standin.base_url, other, timeout=20)
        with pytest.raises(Exception) as info:
            llm.complete(client, "m", [{"role": "user", "content": "x"}], 0.3, 100, json_mode=False)
    assert info.value.reason_code == "unauthorized" and other not in str(info.value)
    assert other[:12] not in str(info.value)


def test_hostile_provider_in_a_real_run(tmp_path, sqlite_url):
    # One call at a time and no retries: the first four summarized papers meet, in order, a 400,
    # a 500 and a 429 whose bodies are hostile, then a 200 answer full of escape sequences.
    script = ["hostile400", "hostile500", "hostile429", "hostile"]
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY, script=script) as standin:
        stack = make_stack(tmp_path, sqlite_url, arxiv, standin,
                           ai_summary={"max_workers": 1, "max_retries": 0, "max_papers_to_summarize": 5})
        stack.env["LOG_LEVEL"] = "WARNING"
        res = stack.cli("run", timeout=300)
        status = stack.cli("status", check=False)
        status_json = stack.cli("status", "--json", check=False)
    assert standin.statuses()[:4] == [400, 500, 429, 200]
    out = stack.output_dir
    papers = json.loads((out / "papers.json").read_text())
    failed = [p for p in papers if p["summary_status"] == "failed"]
    assert sorted(p["summary_note"] for p in failed) == sorted([
        "the LLM provider rejected the request (HTTP 400)", "the LLM provider reported an error (HTTP 500)",
        "rate limited by the LLM provider (HTTP 429)"])
    done = [p for p in papers if p["summary"]]
    assert len(done) == 2 and all(p["summary"]["tldr"].startswith("TL;DR:") for p in done)
    for name in OUTPUTS:
        text = (out / name).read_text()
        _assert_clean(text, name)
        if name.endswith(".json"):  # decoded, too: no JSON escape may carry a control character
            _assert_clean(json.dumps(json.loads(text), ensure_ascii=False), name)
            for p in json.loads(text) if name == "papers.json" else []:
                if p["summary"]:
                    _assert_clean(json.dumps(json.loads(p["summary"]["text"]), ensure_ascii=False), "raw answer")
    readme = (out / "README.md").read_text()
    assert "AI summary failed: the LLM provider rejected the request (HTTP 400)" in readme
    assert "AI summary failed: rate limited by the LLM provider (HTTP 429)" in readme
    assert "the LLM provider reported an error (HTTP 500)" in (out / "index.html").read_text()
    # status: our words only, no escape sequence anywhere (text and JSON).
    for text, where in ((status.stdout + status.stderr, "status"), (status_json.stdout, "status --json")):
        _assert_clean(text, where)
        assert "\\u001b" not in text
    assert "the LLM provider rejected the request (HTTP 400)" in status.stdout
    # The logs keep the provider's text (for the operator), cleaned and without the key.
    _assert_clean(res.stderr, "log", provider_words=True)
    assert "Invalid request" in res.stderr and "summary failed" in res.stderr


def test_hostile_arxiv_error_text_is_clean_in_run_and_status(tmp_path, sqlite_url):
    """arXiv's own error text (an error channel carrying an 8-bit CSI, a raw ESC sequence and a
    BEL) fails the pass with one clean line; `status` shows it clean too."""
    from tests.faults import RawFeed

    body = ("<?xml version='1.0' encoding='UTF-8'?>\n<rss version=\"2.0\"><channel>"
            "<title>Feed error for query: cs.XX</title><description>Bad \u009b2Jcategory \x1b[31mcs.XX\x1b[0m\x07 "
            "\x1b]0;pwned\x07given</description></channel></rss>").encode()
    with RawFeed(body) as feed, LLMStandin() as standin:
        stack = make_stack(tmp_path, sqlite_url, feed, standin)
        stack.env.update(LLM_API_KEY="")
        res = stack.cli("run", "--no-summaries", check=False, timeout=180)
        status = stack.cli("status", check=False)
        status_json = stack.cli("status", "--json", check=False)
    assert res.returncode == 1 and ": Bad category cs.XX given" in res.stderr.splitlines()[-1], res.stderr
    for text, where in ((res.stderr, "run"), (status.stdout, "status"), (status_json.stdout, "status --json")):
        _assert_clean(text, where)
        assert "\\u001b" not in text and "\\u009b" not in text and "[31m" not in text, where
    assert "Bad category cs.XX given" in status.stdout


def test_a_stored_provider_note_is_never_published():
    """A failure note stored before reason codes (the provider's text after our prefix) reaches
    papers.json, the feeds, the page, e-mails and chat messages (the JSON webhook carries the
    paper dicts) only as our phrase: digest.paper_dict is where every one of them reads it."""
    import datetime as dt

    from shared.digest import paper_dict
    from shared.models import ITEM_WANTS_SUMMARY, SUM_FAILED, Paper, ProfileItem, SummaryJob

    paper = Paper(id="2411.17700", version=1, title="T", abstract="A", authors=["A B"], primary_category="cs.LG",
                  categories=["cs.LG"])
    item = ProfileItem(profile="default", pass_id=1, paper_id=paper.id, rank=1, score=1.0, matched=[],
                       match_details=[], announce_type="new", summary_state=ITEM_WANTS_SUMMARY, language="en")
    job = SummaryJob(pass_id=1, paper_id=paper.id, language="en", state=SUM_FAILED,
                     note=f"LLM request rejected (HTTP 401): {hostile_error(LLM_KEY)}")
    p = paper_dict(paper, item, None, job, None, dt.date(2024, 11, 28))
    assert p["summary_note"] == "the LLM provider refused the API key (HTTP 401)"
    _assert_clean(json.dumps(p, ensure_ascii=False), "paper dict")

"""Dependencies failing (issue 8 req 4): PostgreSQL unavailable, arXiv storms, a misbehaving LLM.

PostgreSQL goes away for 10 s for this test's database only (ALLOW_CONNECTIONS false + its
backends terminated): tasks retry, the web service (a real `arxiv-bot serve`) answers 503 on
/healthz with a one-line JSON reason during the outage and 200 after. arXiv and the LLM
provider misbehave through the stand-ins' fault modes. Every test ends with the invariant.
"""
from __future__ import annotations

import json
import socket
import subprocess
import time

import httpx
import pytest

from tests.faults import (LLM_KEY, check_invariants, make_stack, passes, pg_unavailable,
                          wait_pass, wait_until)
from tests.procs import BIN, _die_with_parent
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(stack, port: int) -> subprocess.Popen:
    log = open(stack.tmp / "serve.log", "wb")
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env={**stack.env, "WEB_WORKERS": "2"},
                            stdout=log, stderr=subprocess.STDOUT, cwd=stack.tmp, preexec_fn=_die_with_parent)

    def up():
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code in (200, 503)
        except httpx.TransportError:
            assert proc.poll() is None, (stack.tmp / "serve.log").read_text()[-2000:]
            return False
    wait_until(up, 60, what="arxiv-bot serve up")
    return proc


@pytest.mark.slow
def test_postgres_unavailable_mid_pass(tmp_path, pg_url, redis_url):
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY) as llm:
        stack = make_stack(tmp_path, pg_url, arxiv, llm, broker_url=redis_url)
        port = free_port()
        web = start_serve(stack, port)
        health = f"http://127.0.0.1:{port}/healthz"
        try:
            assert httpx.get(health, timeout=10).status_code == 200
            stack.start_all()
            arxiv.fail_next("slow:3")  # the fetch is in flight when the database goes away
            stack.cli("trigger")
            wait_until(lambda: any(r[1].startswith("/rss/") for r in arxiv.requests), 60, what="fetch started")
            during = []
            with pg_unavailable(pg_url, seconds=10):
                for _ in range(5):
                    r = httpx.get(health, timeout=10)
                    during.append((r.status_code, r.headers.get("content-type"), r.text))
            after = wait_until(lambda: httpx.get(health, timeout=10).status_code == 200 or None, 60,
                               what="healthz 200 after the outage")
            wait_pass(pg_url, timeout=180)
        finally:
            stack.stop()
            web.terminate()
            web.wait(timeout=20)
        assert after
        assert {code for code, _, _ in during} == {503}, during
        for _, ctype, body in during:
            assert ctype.startswith("application/json")
            reason = json.loads(body)
            assert reason["database"].startswith("error: ") and "Traceback" not in body
        check_invariants(pg_url, stack.output_dir, llm)
    fetcher_log = (stack.tmp / "worker-fetcher-0.log").read_text()
    assert "database unavailable" in fetcher_log  # the store failed and was retried, not lost


@pytest.mark.slow
def test_database_outage_after_a_paid_call_does_not_pay_twice(tmp_path, pg_url, redis_url):
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY, script=["slow"], slow_seconds=5) as llm:
        stack = make_stack(tmp_path, pg_url, arxiv, llm, broker_url=redis_url, ai_summary={"max_retries": 10})
        try:
            stack.start_all()
            stack.cli("trigger")
            wait_until(lambda: llm.arrivals, 120, 0.05, what="first provider call")
            outage_began = time.monotonic()
            with pg_unavailable(pg_url, seconds=10):
                pass  # the slow answer (5 s) arrives while the database is away
            outage_ended = time.monotonic()
            wait_pass(pg_url, timeout=180)
        finally:
            stack.stop()
        check_invariants(pg_url, stack.output_dir, llm)
    # The outage hit the call in flight: asked before it, answered (and paid) during it...
    arrived, answered, title, status = llm.answered[0]
    assert status == 200 and arrived < outage_began < answered < outage_ended, \
        (arrived, answered, outage_began, outage_ended)
    # ...so the worker had to keep the paid answer until the database came back, and did.
    assert "database unavailable while storing a paid summary; retrying" in \
        (stack.tmp / "worker-summarizer-2.log").read_text()
    assert [t for _, _, t, st in llm.answered if st == 200].count(title) == 1


def test_llm_provider_faults(tmp_path, sqlite_url):
    """429 for a while, 500s, a timeout, empty/null/huge/malformed answers: every paper terminal,
    none paid twice, the failures visible with their reason."""
    script = ["429"] * 8 + ["500", "500", "slow", "empty", "huge", "null", "malformed", "html"]
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY, script=script, slow_seconds=4, retry_after="1") as llm:
        stack = make_stack(tmp_path, sqlite_url, arxiv, llm, ai_summary={"timeout": 2, "max_retries": 6})
        res = stack.cli("run", timeout=300)
        assert "published 2024-11-28" in res.stdout
        assert LLM_KEY not in res.stdout + res.stderr
        # slow (timed out), malformed and html are 200s nobody could use: retried, so up to 3 extra
        result = check_invariants(sqlite_url, stack.output_dir, llm, garbled=3)
    assert result["ranked"] == 30
    states = result["states"]
    assert states["done"] + states["failed"] == 15, states
    assert states["failed"] <= 3  # the empty and null answers are permanent; the rest retried
    assert llm.statuses().count(429) == 8
    papers = json.loads((stack.output_dir / "papers.json").read_text())
    failed = [p for p in papers if p["summary_status"] == "failed"]
    assert all(p["summary_note"] and "empty answer" in p["summary_note"] for p in failed), failed


def test_arxiv_storm_then_recovery(tmp_path, sqlite_url):
    """429/503 with Retry-After several times in a row, then a reset: the fetch waits them out."""
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY) as llm:
        stack = make_stack(tmp_path, sqlite_url, arxiv, llm, fetch={"max_retries": 6})
        arxiv.fail_next("503:1", "429:1", "503:1", "429:1", "reset")
        res = stack.cli("run", timeout=300)
        assert "published 2024-11-28: 376 papers fetched" in res.stdout
        rss = [r for r in arxiv.requests if r[1].startswith("/rss/")]
        assert len(rss) == 6
        result = check_invariants(sqlite_url, stack.output_dir, llm)
    assert result["states"]["done"] == 15


def test_arxiv_storm_beyond_the_budget_fails_with_a_reason(tmp_path, sqlite_url):
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY) as llm:
        stack = make_stack(tmp_path, sqlite_url, arxiv, llm, fetch={"max_retries": 2})
        arxiv.fail_next(*["503:1"] * 10)
        res = stack.cli("run", timeout=300, check=False)
        assert res.returncode != 0
        assert "cannot reach arXiv" in res.stderr and "Traceback" not in res.stderr
        errors = [line for line in res.stderr.strip().splitlines() if not line.startswith("arxiv-bot: warning:")]
        assert len(errors) == 1 and errors[0].startswith("arxiv-bot: error: "), res.stderr
        assert passes(sqlite_url)[-1][1] == "failed"
        check_invariants(sqlite_url, stack.output_dir, llm, status="failed")
    assert llm.requests == []

"""`make demo` as a user runs it: the Makefile target on free ports (PORT, DEMO_ARXIV_PORT), in its
own process group, until the page answers over HTTP; the page and papers.json hold the recorded
day's digest; Ctrl-C (SIGINT to the group) stops the web service and the arXiv stand-in.

It runs in the checkout (data/demo, output/demo, both git-ignored), like the target itself.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess

import httpx
import pytest

from tests.conftest import free_port
from tests.procs import ROOT
from tests.faults import wait_until

# What the project reads from the environment: the demo sets its own, nothing may leak in.
PROJECT_ENV = ("ARXIV_BOT_CONFIG", "DATABASE_URL", "BROKER_URL", "REDIS_URL", "ARXIV_RSS_URL", "ARXIV_API_URL",
               "LLM_BASE_URL", "LLM_API_KEY", "LLM_MODEL", "OUTPUT_DIR", "ARXIV_PDF_URL", "ARXIV_HTML_URL",
               "OPENAI_API_KEY", "OPENAI_BASE_URL", "PROFILES_DIR", "SMTP_URL", "SMTP_FROM", "SECRET_KEY",
               "DASHSCOPE_API_KEY", "WEB_WORKERS")


def _free(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
        return False
    except httpx.TransportError:
        return True


@pytest.mark.slow
def test_make_demo_serves_the_recorded_day(tmp_path):
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    port, arxiv_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in PROJECT_ENV}
    log = tmp_path / "make-demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["make", "--no-print-directory", "demo", f"PORT={port}", f"DEMO_ARXIV_PORT={arxiv_port}"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def page_up():
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(base + "/", timeout=10)
        except httpx.TransportError:
            return None
    try:
        page = wait_until(page_up, 300, 0.5, what="make demo's page")
        papers = httpx.get(base + "/papers.json", timeout=10)
        health = httpx.get(base + "/healthz", timeout=10)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    output = log.read_text()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "published 2024-11-28" in output and f"open http://127.0.0.1:{port}/" in output, output[-3000:]
    assert "2024-11-28" in page.text and page.text.count('<li class="paper"') == 30
    listed = papers.json()
    assert len(listed) == 30 and all(p["day"] == "2024-11-28" for p in listed)
    assert listed[0]["title"] in page.text.replace("&#39;", "'").replace("&amp;", "&")
    assert all(p["summary"] is None for p in listed)  # the demo runs without an LLM key
    assert health.status_code == 200 and json.loads(health.text)["database"] == "ok"
    # Ctrl-C stopped both servers.
    wait_until(lambda: _free(port) and _free(arxiv_port), 30, what="demo servers stopped")
    assert "Traceback" not in output

"""`arxiv-bot status` on a real database after real passes, and `arxiv-bot run`'s progress bars
on a real pseudo-terminal.

The passes are real `arxiv-bot run` processes against the arXiv and LLM stand-ins over HTTP (as in
tests/test_e2e.py). The second pass asks for 20 summaries while the LLM answers 500 to
everything, with no retries: the 15 summaries of the first pass are reused, the 5 new ones fail,
and their reason must show in the text and the JSON output.
"""
from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios

import pytest

from tests.procs import BIN, Stack, write_config
from tests.standins.llm import LLMStandin
from tests.test_e2e import LLM_KEY, make_stack, standins  # noqa: F401  (standins is a fixture)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def run_on_pty(argv: list[str], env: dict[str, str], cwd, cols: int = 120, timeout: float = 120) -> tuple[int, str]:
    """Run `argv` with stdin/stdout/stderr on a new pseudo-terminal; (exit code, text without escapes)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    proc = subprocess.Popen(argv, env={**env, "TERM": "xterm-256color"}, cwd=cwd, stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child side closed (the process ended)
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=timeout)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))


def test_run_shows_stage_bars_on_a_terminal(tmp_path, sqlite_url, standins):  # noqa: F811
    stack = make_stack(tmp_path, sqlite_url, standins)
    code, out = run_on_pty([str(BIN), "run"], stack.env, stack.tmp)
    assert code == 0, out[-3000:]
    for stage in ("fetch (376 papers)", "score", "summarize", "publish"):
        assert stage in out, out[-3000:]
    assert re.search(r"score\s+━+\s+100%\s+376/376", out), out[-3000:]
    assert re.search(r"summarize\s+━+\s+100%\s+15/15", out), out[-3000:]
    # The plain stage lines still appear, and the outcome line is printed once the bars stop.
    assert "scored 376 papers: " in out
    last = [line for line in out.splitlines() if line.strip()][-1]
    assert last.startswith("published 2024-11-28: 376 papers fetched") and "15 summarized" in last
    assert LLM_KEY not in out


@pytest.fixture
def two_passes(tmp_path, db_url, standins):  # noqa: F811
    """A published pass with 15 summaries, then one where 5 more summaries fail (LLM 500)."""
    stack = make_stack(tmp_path, db_url, standins)
    first = stack.cli("run").stdout
    # Not a terminal (a pipe): the plain lines only, exactly as before, no bars or escapes.
    assert "━" not in first and "%" not in first and "\x1b[" not in first
    assert first.splitlines()[0].startswith("fetching announcements for cs.AI, cs.CL, cs.DC, cs.LG from http://")
    assert first.splitlines()[-1].startswith("published 2024-11-28: 376 papers fetched")
    with LLMStandin(api_key=LLM_KEY, mode="500") as broken:
        stack.env["LLM_BASE_URL"] = broken.base_url
        path = stack.tmp / "config.json"
        cfg = json.loads(path.read_text())
        cfg["ai_summary"].update(max_retries=0, max_papers_to_summarize=20)
        path.write_text(json.dumps(cfg))
        stack.cli("run")
        assert broken.requests, "the second pass asked the LLM for the 5 new summaries"
    return stack


def test_status_text_and_json_after_real_passes(two_passes):
    stack = two_passes
    data = json.loads(stack.cli("status", "--json").stdout)
    latest = data["latest_pass"]
    assert latest["status"] == "published" and latest["trigger"] == "cli" and latest["day"] == "2024-11-28"
    assert latest["stages"]["items"] == 376 and latest["stages"]["scored"] == 376
    assert latest["stages"]["done"] == 15 and latest["stages"]["failed"] == 5
    assert [p["status"] for p in data["passes"]] == ["published", "published"]
    assert data["passes"][1]["tokens"] > 0 and data["passes"][0]["tokens"] == 0  # reused: nothing paid
    assert [p["failed_summaries"] for p in data["passes"]] == [5, 0]
    assert len(data["failures"]) == 5
    reasons = {f["reason"] for f in data["failures"]}
    assert all(f["state"] == "failed" and f["paper_id"] for f in data["failures"])
    assert all("500" in r or "server error" in r.lower() for r in reasons), reasons
    totals = data["totals"]
    assert totals["summaries"] == 15 and totals["prompt_tokens"] > 0 and totals["completion_tokens"] > 0
    assert totals["prompt_tokens"] + totals["completion_tokens"] == data["passes"][1]["tokens"]

    text = stack.cli("status").stdout
    assert f"latest pass {latest['id']} (cli): published, day 2024-11-28" in text
    assert "summaries: 15 done, 0 pending, 5 failed" in text
    assert re.search(rf"#{latest['id']} .* published .* 0 tokens  5 failed summaries", text), text
    for f in data["failures"]:
        assert f"  failed: {f['paper_id']}: {f['reason']}" in text
    assert f"{totals['prompt_tokens'] + totals['completion_tokens']} LLM tokens" in text
    assert text.count(" published ") >= 2 and LLM_KEY not in text


def _status_stack(tmp_path, db_url: str | None) -> Stack:
    """No stand-ins needed: status only reads the database."""
    env = {"ARXIV_BOT_CONFIG": str(write_config(tmp_path)), "LLM_API_KEY": "", "BROKER_URL": ""}
    stack = Stack(tmp_path, env)
    stack.env.pop("DATABASE_URL", None)
    if db_url:
        stack.env["DATABASE_URL"] = db_url
    return stack


def test_status_never_creates_a_database(tmp_path):
    """Run where nothing ran yet (the default sqlite:///data/arxiv-bot.db, relative to the
    working directory): a one-line error naming the database it looked for, nothing created."""
    stack = _status_stack(tmp_path, None)
    res = stack.cli("status", check=False)
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.strip() == (f"arxiv-bot: error: no database at {tmp_path / 'data' / 'arxiv-bot.db'} "
                                  "(DATABASE_URL=sqlite:///data/arxiv-bot.db): nothing has run with it yet; "
                                  "run `arxiv-bot run` here, or set DATABASE_URL")
    assert not (tmp_path / "data").exists()
    assert stack.cli("status", "--json", check=False).returncode == 1 and not (tmp_path / "data").exists()


def test_status_on_an_empty_database(tmp_path, db_url):
    stack = _status_stack(tmp_path, db_url)
    res = stack.cli("status", check=False)  # the database exists (PG) or not (SQLite), without tables
    assert res.returncode == 1 and ("has no arxiv-bot tables" in res.stderr or "no database at" in res.stderr)
    stack.cli("db", "upgrade")
    assert "no pass yet" in stack.cli("status").stdout
    data = json.loads(stack.cli("status", "--json").stdout)
    assert data["latest_pass"] is None and data["passes"] == [] and data["totals"]["papers"] == 0


def test_status_names_skip_reasons_and_failed_pass_day(tmp_path, sqlite_url):
    import datetime as dt

    from shared.db import make_engine, session_factory
    from shared.models import Paper, Pass
    from tests.seed import digest_item

    stack = _status_stack(tmp_path, sqlite_url)
    stack.cli("db", "upgrade")
    engine = make_engine(sqlite_url)
    sm = session_factory(engine)
    with sm.begin() as s:
        done = Pass(status="published", day=dt.date(2024, 11, 28), selected=3)
        s.add(done)
        s.flush()
        done.active = None
        for n in range(3):
            s.add(Paper(id=f"2411.0000{n}", version=1, title="t", abstract="a", authors=["A"],
                        primary_category="cs.LG", categories=["cs.LG"]))
            s.flush()
            digest_item(s, done.id, f"2411.0000{n}", rank=n + 1, score=1.0, summary_state="skipped",
                        note="AI summaries disabled: set DASHSCOPE_API_KEY")
    text = stack.cli("status").stdout
    assert "3 skipped (AI summaries disabled: set DASHSCOPE_API_KEY)" in text
    assert json.loads(stack.cli("status", "--json").stdout)["latest_pass"]["skip_reasons"] == {
        "AI summaries disabled: set DASHSCOPE_API_KEY": 3}

    with sm.begin() as s:  # then a pass that failed before the feed named its day
        failed = Pass(status="failed", day=None, error="arXiv response unusable: HTTP 404")
        s.add(failed)
        s.flush()
        failed.active = None
    engine.dispose()
    res = stack.cli("status", check=False)
    assert res.returncode == 1, res.stdout
    assert "None" not in res.stdout
    assert re.search(r"latest pass \d+ \(cli\): failed, day not known \(started \d{4}-\d\d-\d\d \d\d:\d\d\)",
                     res.stdout), res.stdout
    assert res.stdout.rstrip().endswith("the latest pass failed: arXiv response unusable: HTTP 404")
    assert re.search(r"published\s+day 2024-11-28", res.stdout)
    as_json = stack.cli("status", "--json", check=False)
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["latest_pass"]["status"] == "failed"

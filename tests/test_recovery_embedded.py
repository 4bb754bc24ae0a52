"""Crash then rerun, embedded (issue 17.8): `arxiv-bot run` SIGKILLed during a provider call, then
run again. The rerun takes over the dead process's lease at once (a process of this host whose
pid no longer runs is known dead: shared.liveness), instead of sitting silent for the whole lease
(here 300 s, longer than the rerun is given), and the call lost with the process is counted: one
more provider call, its tokens estimated and marked as such in the pass and the run's last line.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

from sqlalchemy import select

from shared.models import Pass, Summary
from tests.faults import LLM_KEY, check_invariants, engine, make_stack, wait_until
from tests.procs import BIN, _die_with_parent
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin

LEASE = 300.0


def test_run_killed_mid_call_then_rerun_takes_over_at_once(tmp_path, sqlite_url):
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY, script=["slow"], slow_seconds=60) as llm:
        stack = make_stack(tmp_path, sqlite_url, arxiv, llm, ai_summary={"lease_seconds": LEASE, "max_workers": 1})
        first = subprocess.Popen([str(BIN), "run"], env=stack.env, cwd=stack.tmp, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        try:
            wait_until(lambda: llm.arrivals, 120, 0.05, what="the first provider call")
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        lost_title = llm.arrivals[0][1]
        started = time.monotonic()
        rerun = stack.cli("run", timeout=LEASE - 60)  # waiting for the lease would time out
        print(f"\nrerun after the kill took {time.monotonic() - started:.1f} s (the lease: {LEASE:.0f} s)")
        result = check_invariants(sqlite_url, stack.output_dir / "", llm, kills=1)
    assert result["states"]["done"] == 15
    eng = engine(sqlite_url)
    try:
        with eng.connect() as c:
            p = c.execute(select(Pass).order_by(Pass.id.desc())).first()
            calls = dict(c.execute(select(Summary.paper_id, Summary.provider_calls)).all())
    finally:
        eng.dispose()
    assert p.id == 1 and p.estimated_tokens > 0  # the same pass, resumed; the lost call estimated
    assert p.prompt_tokens + p.completion_tokens > p.estimated_tokens
    assert sorted(calls.values()) == [1] * 14 + [2], calls  # the lost call counted once, on its paper
    assert [t for _, t in llm.arrivals].count(lost_title) == 2
    assert f"~{p.estimated_tokens} estimated" in rerun.stdout, rerun.stdout

"""Waits that are not failures, with real `arxiv-bot worker summarizer` processes over real Redis:

- Never pay twice, between live replicas: while one replica holds the lease and its provider
  call is in flight (the LLM stand-in holds the answer), the same paper sent to a second live
  replica waits for the lease instead of calling; when it comes back the summary is done and it
  does nothing. On SQLite and PostgreSQL.
- The shared rate limit's long waits: a wait longer than MAX_INLINE_WAIT becomes a Celery
  countdown that does not use up the retry budget. With a real low limit and max_retries 0, every
  paper must still be summarized (a wait counted as a failure would fail it at once).
"""
from __future__ import annotations

import re

from services.summarizer.handlers import MAX_INLINE_WAIT
from shared.models import PASS_SUMMARIZING, SUM_DONE
from tests.standins.llm import LLMStandin
from tests.test_summarizer_service import LLM_KEY, Seeded, make_stack, papers, wait_for

SLOW = 3.0    # the first call's answer is held this long
LEASE = 10.0  # longer than the call even on a loaded machine; the waiting replica comes back then


def test_second_replica_waits_while_a_live_lease_is_held(tmp_path, db_url, redis_url):
    with LLMStandin(api_key=LLM_KEY, script=["slow"], slow_seconds=SLOW) as llm:
        stack = make_stack(tmp_path, db_url, llm, redis_url, lease_seconds=LEASE, timeout=30)
        db = Seeded(stack, db_url)
        rows = papers(1, "Leased")
        (pid, title, _), = rows
        db.add_papers(rows)
        try:
            workers = [stack.start_worker("summarizer", wait=False) for _ in range(2)]
            for w in workers:
                w.wait_ready()
            pass_id = db.new_pass([pid])
            db.send(pass_id, [pid])
            wait_for(lambda: llm.arrivals, 60, "the first call never reached the provider")
            db.send(pass_id, [pid])  # the same paper again: the busy replica holds one message (prefetch 1)
            waiting = re.compile(rf"paper={re.escape(pid)}: {re.escape(pid)}: being summarized by \S+; retry in")

            def second_replica_waited() -> bool:
                assert len(llm.arrivals) == 1, "the second replica called the provider during a live lease"
                return any(waiting.search(w.output()) for w in workers)
            wait_for(second_replica_waited, 60, "the second replica never met the lease")
            wait_for(lambda: db.items(pass_id)[pid].state == SUM_DONE, 60, "never summarized")
            # The waiting message comes back after the lease's remaining time and finds the work done.
            done = re.compile(r"summarizer\.summarize_paper\[[^\]]+\] succeeded")
            wait_for(lambda: sum(len(done.findall(w.output())) for w in workers) == 2, 60,
                     "the retried message never finished")
        finally:
            stack.stop()
    callers = [w for w in workers if "summarized (" in w.output()]
    waiters = [w for w in workers if waiting.search(w.output())]
    assert len(callers) == 1 and len(waiters) == 1 and callers != waiters  # two replicas, one call
    assert [t for _, t in llm.arrivals] == [title]  # exactly one provider call, ever
    summ = db.summaries()[pid]
    assert (summ.status, summ.provider_calls, summ.attempts) == ("done", 1, 1)
    assert summ.tldr == f"TL;DR: {title} in one sentence."
    db.close()


RPM = 8  # one request per 60/8 * 1.03 = 7.7 s: every refused request waits longer than MAX_INLINE_WAIT


def test_rate_limit_waits_become_countdowns_that_do_not_use_up_retries(tmp_path, sqlite_url, redis_url):
    assert 60 / RPM - 1.5 > MAX_INLINE_WAIT  # still a countdown when a retry comes back 1.5 s late
    with LLMStandin(api_key=LLM_KEY, rpm_limit=RPM) as llm:  # the provider enforces the limit too
        stack = make_stack(tmp_path, sqlite_url, llm, redis_url, requests_per_minute=RPM, max_retries=0)
        db = Seeded(stack, sqlite_url)
        rows = papers(3, "Limited")
        db.add_papers(rows)
        try:
            workers = [stack.start_worker("summarizer", wait=False) for _ in range(2)]
            for w in workers:
                w.wait_ready()
            pass_id = db.new_pass([r[0] for r in rows])
            db.send(pass_id, [r[0] for r in rows])
            wait_for(lambda: db.status(pass_id) != PASS_SUMMARIZING, 120, "the pass never left summarizing")
        finally:
            stack.stop()
    items = db.items(pass_id)
    assert {pid: i.state for pid, i in items.items()} == {r[0]: SUM_DONE for r in rows}, \
        {pid: i.note for pid, i in items.items()}
    logs = "".join(w.output() for w in workers)
    countdowns = re.findall(r"waiting for the shared LLM rate limit; retry in (\d+\.\d)s", logs)
    assert len(countdowns) >= 2 and all(float(c) > MAX_INLINE_WAIT for c in countdowns), countdowns
    assert llm.statuses() == [200] * 3  # the one call per paper, never over the provider's limit
    db.close()

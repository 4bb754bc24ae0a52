"""The summary lease, decided in the database (services/summarizer/lease.py), in-process on real
SQLite and PostgreSQL databases: who may call the provider for a paper, and what happens to the
others. The process-level version (two live workers, one call) is tests/test_summarizer_waits.py.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import subprocess
import sys
import threading

import pytest
from sqlalchemy import select

from services.summarizer.lease import claim, lease_owner, release
from shared.db import ensure_schema, make_engine, session_factory
from shared.errors import TransientError
from shared.models import (PASS_SUMMARIZING, SUM_BUDGET, SUM_PENDING, SUM_SKIPPED, SUMMARY_DONE, SUMMARY_FAILED,
                           SUMMARY_LEASED, Paper, Pass, Summary, SummaryJob, utcnow)
from tests.faults import wait_until
from tests.procs import write_config
from tests.test_shared_passes import runtime

DAY = dt.date(2024, 11, 28)
KEY = dict(paper_id="2411.17700", version=1, model="qwen-long", prompt_hash="h", language="en", input_mode="abstract")
LEASE = 120.0


@pytest.fixture
def db(tmp_path, db_url):
    """(make_rt(**ai), sessionmaker, pass id) with one summary job pending in a summarizing pass."""
    engine = make_engine(db_url)
    ensure_schema(engine)
    S = session_factory(engine)
    with S.begin() as s:
        s.add(Paper(id=KEY["paper_id"], version=1, title="T", abstract="A.", authors=["A"], primary_category="cs.LG",
                    categories=["cs.LG"], announced=DAY, version_announced=DAY))
        p = Pass(status=PASS_SUMMARIZING, active=1, trigger="test", day=DAY)
        s.add(p)
        s.flush()
        s.add(SummaryJob(pass_id=p.id, paper_id=KEY["paper_id"], language=KEY["language"], version=1,
                         state=SUM_PENDING))
        pass_id = p.id

    def make_rt(key: str = "sk-claim-test", **ai):
        cfg = write_config(tmp_path, ai_summary={"lease_seconds": LEASE, "timeout": 20, **ai})
        rt = runtime(cfg, db_url, engine)
        rt.settings = dataclasses.replace(rt.settings, llm_api_key=key or None)
        return rt
    yield make_rt, S, pass_id
    engine.dispose()


def blocked_on_a_lock(db_url: str) -> bool:
    """Some session of this test database is waiting for a lock (PostgreSQL)."""
    from sqlalchemy import create_engine, text

    from tests.conftest import PG_ADMIN_URL

    admin = create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as c:
            return bool(c.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                                      "AND wait_event_type = 'Lock'"), {"d": db_url.rsplit("/", 1)[1]}))
    finally:
        admin.dispose()


def do_claim(rt, S, pass_id):
    """claim() in its own transaction, as summarize_paper does; returns (result, job state, note)."""
    with S.begin() as s:
        job = s.get(SummaryJob, (pass_id, KEY["paper_id"], KEY["language"]))
        out = claim(rt, s, job, s.get(Paper, KEY["paper_id"]), KEY)
        return (out.id if out is not None else None), job.state, job.note


def summary(S) -> Summary | None:
    with S() as s:
        return s.scalars(select(Summary).filter_by(**KEY)).first()


def put_summary(S, **values) -> None:
    with S.begin() as s:
        s.add(Summary(**KEY, **values))


def test_first_claim_takes_the_lease(db):
    make_rt, S, pass_id = db
    rt = make_rt()
    before = utcnow()
    assert do_claim(rt, S, pass_id) == (None, SUM_PENDING, None)  # pending: the caller calls the provider
    after = utcnow()
    summ = summary(S)
    assert (summ.status, summ.lease_owner, summ.attempts) == (SUMMARY_LEASED, lease_owner(), 1)
    assert before + dt.timedelta(seconds=LEASE) <= summ.lease_expires_at <= after + dt.timedelta(seconds=LEASE)
    with S() as s:
        assert s.get(SummaryJob, (pass_id, KEY["paper_id"], KEY["language"])).updated_at >= before  # sweep: not stuck


def test_a_live_lease_is_a_wait_that_does_not_count(db):
    make_rt, S, pass_id = db
    put_summary(S, status=SUMMARY_LEASED, lease_owner="peer:1:1", lease_expires_at=utcnow() + dt.timedelta(seconds=30))
    with pytest.raises(TransientError) as err:
        do_claim(make_rt(), S, pass_id)
    assert err.value.counts is False and 0 < err.value.retry_after <= 30
    assert "being summarized by peer:1:1" in str(err.value)
    summ = summary(S)
    assert (summ.lease_owner, summ.attempts) == ("peer:1:1", 0)  # nothing taken over
    # A lease that runs longer than a minute: the wait is capped, the message comes back to look.
    with S.begin() as s:
        s.scalars(select(Summary)).one().lease_expires_at = utcnow() + dt.timedelta(seconds=600)
    with pytest.raises(TransientError) as err:
        do_claim(make_rt(), S, pass_id)
    assert err.value.retry_after == 10


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_lease_of_a_dead_local_process_is_taken_over_and_its_call_estimated(db):
    """Issue 17.8: `arxiv-bot run` killed mid-call; the rerun takes the lease over at once (no
    wait for its expiry) and counts the lost call: one provider call, its tokens estimated and
    marked as estimates on the pass."""
    make_rt, S, pass_id = db
    dead = f"{socket.gethostname()}:{_dead_pid()}:1"
    put_summary(S, status=SUMMARY_LEASED, lease_owner=dead, lease_expires_at=utcnow() + dt.timedelta(seconds=30),
                inflight_tokens=700, provider_calls=0, attempts=1)
    rt = make_rt(max_tokens=400)
    assert do_claim(rt, S, pass_id) == (None, SUM_PENDING, None)
    summ = summary(S)
    assert (summ.status, summ.lease_owner, summ.attempts) == (SUMMARY_LEASED, lease_owner(), 2)
    assert (summ.provider_calls, summ.inflight_tokens) == (1, None)
    with S() as s:
        p = s.get(Pass, pass_id)
        assert (p.prompt_tokens, p.completion_tokens, p.estimated_tokens) == (700, 200, 900)
    # Taken over once: our own live lease is a wait, and nothing is counted twice.
    with pytest.raises(TransientError):
        do_claim(rt, S, pass_id)
    with S() as s:
        assert s.get(Pass, pass_id).estimated_tokens == 900


def test_a_live_lease_of_a_running_local_process_is_a_wait(db):
    make_rt, S, pass_id = db
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        put_summary(S, status=SUMMARY_LEASED, lease_owner=f"{socket.gethostname()}:{sleeper.pid}:1",
                    lease_expires_at=utcnow() + dt.timedelta(seconds=30), inflight_tokens=700)
        with pytest.raises(TransientError):
            do_claim(make_rt(), S, pass_id)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert summary(S).inflight_tokens == 700  # not counted: the call may still be answered


@pytest.mark.parametrize("status, expires_in", [(SUMMARY_LEASED, -5), (SUMMARY_FAILED, None)])
def test_expired_lease_or_failed_summary_is_taken_over(db, status, expires_in):
    make_rt, S, pass_id = db
    expires = utcnow() + dt.timedelta(seconds=expires_in) if expires_in is not None else None
    put_summary(S, status=status, lease_owner="dead:1:1", lease_expires_at=expires, attempts=1)
    assert do_claim(make_rt(), S, pass_id) == (None, SUM_PENDING, None)
    summ = summary(S)
    assert (summ.status, summ.lease_owner, summ.attempts) == (SUMMARY_LEASED, lease_owner(), 2)
    assert summ.lease_expires_at > utcnow() + dt.timedelta(seconds=LEASE - 30)


def test_a_done_summary_is_reused_whatever_else(db):
    make_rt, S, pass_id = db
    put_summary(S, status=SUMMARY_DONE, tldr="x")
    done_id = summary(S).id
    assert do_claim(make_rt(key=""), S, pass_id)[0] == done_id  # even with no key: no call needed
    assert do_claim(make_rt(daily_token_budget=0), S, pass_id)[0] == done_id  # even over budget


def test_without_a_key_the_job_is_skipped_with_the_reason(db):
    make_rt, S, pass_id = db
    _, state, note = do_claim(make_rt(key=""), S, pass_id)
    assert state == SUM_SKIPPED and note.startswith("AI summaries disabled")
    assert summary(S) is None  # no lease taken


def test_over_the_daily_budget_the_job_is_marked_budget(db):
    make_rt, S, pass_id = db
    with S.begin() as s:
        s.get(Pass, pass_id).prompt_tokens = 700
        s.get(Pass, pass_id).completion_tokens = 300
    _, state, note = do_claim(make_rt(daily_token_budget=1000), S, pass_id)
    assert state == SUM_BUDGET and note == "1000 of 1000 tokens used today (UTC)"
    assert summary(S) is None
    with S.begin() as s:
        s.get(SummaryJob, (pass_id, KEY["paper_id"], KEY["language"])).state = SUM_PENDING
    assert do_claim(make_rt(daily_token_budget=1001), S, pass_id)[1] == SUM_PENDING  # 1 token left: call
    assert summary(S).status == SUMMARY_LEASED


def test_release_gives_up_only_our_own_lease(db):
    make_rt, S, pass_id = db
    rt = make_rt()
    do_claim(rt, S, pass_id)
    release(rt, KEY, "LLM server error (HTTP 500)")
    summ = summary(S)
    assert summ.lease_expires_at <= utcnow() and summ.error == "LLM server error (HTTP 500)"
    assert summ.status == SUMMARY_LEASED and summ.lease_owner is None  # a late renewal cannot revive it
    # Someone else's live lease is not ours to release.
    with S.begin() as s:
        row = s.scalars(select(Summary)).one()
        row.lease_owner, row.lease_expires_at, row.error = "peer:2:2", utcnow() + dt.timedelta(seconds=60), None
    release(rt, KEY, "x" * 5000)
    summ = summary(S)
    assert summ.lease_owner == "peer:2:2" and summ.lease_expires_at > utcnow() and summ.error is None


def test_release_touches_only_that_paper_and_keeps_the_error_short(db):
    make_rt, S, pass_id = db
    rt = make_rt()
    other = {**KEY, "language": "zh"}  # another summary of ours in flight (another thread)
    with S.begin() as s:
        s.add(Summary(**other, status=SUMMARY_LEASED, lease_owner=lease_owner(),
                      lease_expires_at=utcnow() + dt.timedelta(seconds=60)))
    do_claim(rt, S, pass_id)
    release(rt, KEY, "x" * 5000)
    with S() as s:
        mine = s.scalars(select(Summary).filter_by(**KEY)).one()
        still = s.scalars(select(Summary).filter_by(**other)).one()
    assert mine.lease_expires_at <= utcnow() and mine.error == "x" * 1000
    assert still.lease_expires_at > utcnow() and still.error is None


def test_release_without_a_database_only_logs(db, caplog):
    """The original error matters more: a release that cannot reach the database logs one line
    (the exception's type, never its text) and raises nothing; the lease expires on its own."""
    import logging

    make_rt, S, pass_id = db
    rt = make_rt()
    rt.__dict__["engine"] = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
                                        connect_args={"connect_timeout": 2})
    rt.__dict__.pop("Session", None)
    with caplog.at_level(logging.WARNING, logger="services.summarizer.lease"):
        release(rt, KEY, "LLM server error (HTTP 500)")
    assert [r.getMessage() for r in caplog.records] == ["could not release the summary lease: OperationalError"]


def test_two_first_claims_at_once_one_waits(db, db_url):
    """Two workers claim a paper that has no summary row yet: one inserts it, the other hits the
    unique key and is told to wait (not a failure), never to call too."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises the two writers before the insert")
    make_rt, S, pass_id = db
    rt = make_rt()
    s1 = S()
    s1.begin()
    job = s1.get(SummaryJob, (pass_id, KEY["paper_id"], KEY["language"]))
    assert claim(rt, s1, job, s1.get(Paper, KEY["paper_id"]), KEY) is None  # inserted, not committed
    errors = []

    def second():
        try:
            do_claim(rt, S, pass_id)
        except TransientError as exc:
            errors.append(exc)
    t = threading.Thread(target=second)
    t.start()
    wait_until(lambda: blocked_on_a_lock(db_url), 60, 0.05, what="the second claim waiting on the first's row")
    s1.commit()
    s1.close()
    t.join(30)
    assert len(errors) == 1 and errors[0].counts is False
    assert "another worker is claiming it" in str(errors[0]) and errors[0].retry_after == 2  # look again soon
    assert summary(S).attempts == 1


# --- the heartbeat's renewal, the call in flight, a remote owner known dead ----------------------

def _lease(S) -> tuple:
    summ = summary(S)
    return summ.lease_owner, summ.lease_expires_at, summ.inflight_tokens


def test_the_heartbeat_renews_only_our_live_lease(db):
    from services.summarizer.lease import renewer

    make_rt, S, pass_id = db
    rt = make_rt()
    do_claim(rt, S, pass_id)
    other = {**KEY, "language": "zh"}  # another lease of ours: its own renewer's business
    soon = utcnow() + dt.timedelta(seconds=1)
    with S.begin() as s:  # the lease is about to run out
        s.scalars(select(Summary)).one().lease_expires_at = soon
        s.add(Summary(**other, status=SUMMARY_LEASED, lease_owner=lease_owner(), lease_expires_at=soon))
    before = utcnow()
    renewer(rt, KEY)()
    owner, expires, _ = _lease(S)
    assert owner == lease_owner() and expires >= before + dt.timedelta(seconds=LEASE)
    with S.begin() as s:
        assert s.scalars(select(Summary).filter_by(**other)).one().lease_expires_at == soon
        s.delete(s.scalars(select(Summary).filter_by(**other)).one())
    # Released (owner cleared), done, or a peer's: never renewed.
    release(rt, KEY, "x")
    renewer(rt, KEY)()
    assert _lease(S)[1] <= utcnow()
    with S.begin() as s:
        row = s.scalars(select(Summary)).one()
        row.lease_owner, row.lease_expires_at = lease_owner(), utcnow()
        row.status = SUMMARY_DONE
    renewer(rt, KEY)()
    assert _lease(S)[1] <= utcnow()
    with S.begin() as s:
        row = s.scalars(select(Summary)).one()
        row.status, row.lease_owner = SUMMARY_LEASED, "peer:3:3"
    renewer(rt, KEY)()
    assert _lease(S)[1] <= utcnow()


def test_the_call_in_flight_is_recorded_on_our_lease_and_cleared_on_release(db):
    from services.summarizer.lease import call_started

    make_rt, S, pass_id = db
    rt = make_rt()
    other = {**KEY, "language": "zh"}
    with S.begin() as s:
        s.add(Summary(**other, status=SUMMARY_LEASED, lease_owner="peer:4:4",
                      lease_expires_at=utcnow() + dt.timedelta(seconds=60)))
    do_claim(rt, S, pass_id)
    with S.begin() as s:
        call_started(s, KEY, 321)
        call_started(s, other, 999)  # not ours: untouched
    assert _lease(S)[2] == 321
    with S() as s:
        assert s.scalars(select(Summary).filter_by(**other)).one().inflight_tokens is None
    release(rt, KEY, "timed out")
    assert _lease(S)[2] is None  # nothing to count as lost after a clean give-up
    with S.begin() as s:
        row = s.scalars(select(Summary).filter_by(**KEY)).one()
        row.status, row.lease_owner = SUMMARY_DONE, lease_owner()
    release(rt, KEY, "late")  # a finished summary is not a lease to give up
    assert summary(S).error == "timed out"
    with S.begin() as s:
        call_started(s, KEY, 55)  # nor a call to record
    assert _lease(S)[2] is None


def test_a_lost_call_adds_to_what_was_counted_and_says_so(db, caplog):
    make_rt, S, pass_id = db
    dead = f"{socket.gethostname()}:{_dead_pid()}:1"
    put_summary(S, status=SUMMARY_LEASED, lease_owner=dead, lease_expires_at=utcnow() + dt.timedelta(seconds=30),
                inflight_tokens=700, provider_calls=2, attempts=3)
    caplog.set_level("INFO", logger="services.summarizer.lease")
    do_claim(make_rt(max_tokens=401), S, pass_id)
    assert summary(S).provider_calls == 3  # two calls paid before, one lost now
    with S() as s:
        p = s.get(Pass, pass_id)
        assert (p.prompt_tokens, p.completion_tokens, p.estimated_tokens) == (700, 200, 900)
    lines = [r.getMessage() for r in caplog.records]
    assert f"{KEY['paper_id']}: taking over the lease of {dead} (no longer running)" in lines
    assert (f"pass {pass_id} paper {KEY['paper_id']}: a provider call was lost with its worker; about 900 tokens "
            "counted as an estimate") in lines


def test_a_remote_owner_without_a_liveness_key_is_taken_over_at_once(db, redis_url):
    """Known dead through Redis (another host: no pid to check): its key is gone while liveness
    has been kept longer than TTL + BEAT. With liveness just restarted, the lease is waited on."""
    import time

    import redis

    from shared import liveness

    make_rt, S, pass_id = db
    rt = make_rt()
    rt.settings = dataclasses.replace(rt.settings, redis_url=redis_url)
    put_summary(S, status=SUMMARY_LEASED, lease_owner="far-away-host:123:1",
                lease_expires_at=utcnow() + dt.timedelta(seconds=30), attempts=1)
    r = redis.Redis.from_url(redis_url)
    r.set(liveness.SINCE, repr(time.time() - 5))  # liveness restarted 5 s ago: not yet trusted
    with pytest.raises(TransientError):
        do_claim(rt, S, pass_id)
    r.set(liveness.PREFIX + "far-away-host:123", "[]")
    r.set(liveness.SINCE, repr(time.time() - 100))
    with pytest.raises(TransientError):  # trusted, but its key says it lives
        do_claim(rt, S, pass_id)
    r.delete(liveness.PREFIX + "far-away-host:123")
    assert do_claim(rt, S, pass_id) == (None, SUM_PENDING, None)
    assert summary(S).lease_owner == lease_owner()

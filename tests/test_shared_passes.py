"""The pass lifecycle's promises, raced and aged on real SQLite and PostgreSQL databases.

- One pass at a time: many callers of the real begin path (shared.lifecycle.start_pass ->
  shared.passes.begin) released together behind a barrier, round after round, in threads of one
  process and in separate OS processes, open exactly one active pass per round; every loser gets
  that pass back.
- The sweep (shared.lifecycle.sweep) re-sends only work untouched for stuck_after_seconds (profiles
  to score or publish, summary jobs), never a summary under a live lease, and marks what it
  re-sent so it is not re-sent on the next tick.
"""
from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select, update

from shared import names, passes
from shared.db import ensure_schema, make_engine, session_factory
from shared.models import (PASS_FETCHING, PASS_PUBLISHED, PASS_PUBLISHING, PASS_SCORING, PASS_SUMMARIZING,
                           SUM_DONE, SUM_PENDING, SUMMARY_LEASED, Paper, Pass, PassProfile, Summary, SummaryJob,
                           utcnow)
from tests.procs import write_config

THREADS, THREAD_ROUNDS = 8, 12
PROCS, PROC_ROUNDS = 4, 6


class Recorder:
    """The dispatcher seam: keeps what would be sent after commit (tests read the messages)."""

    def __init__(self):
        self.sent: list[tuple[str, dict]] = []
        self._lock = threading.Lock()

    def send(self, task, kwargs, countdown=None):
        with self._lock:
            self.sent.append((task, kwargs))


def runtime(config_path, db_url, engine=None):
    from shared.runtime import Runtime
    from shared.settings import load

    config, settings = load(config_path, {"DATABASE_URL": db_url, "LLM_API_KEY": ""})
    return Runtime(config, settings, dispatcher=Recorder(), engine=engine or make_engine(db_url))


def active_passes(engine) -> list[int]:
    with engine.connect() as c:
        return list(c.scalars(select(Pass.id).where(Pass.active == 1)))


def finish_all(engine) -> None:
    """End the round's pass (as the publisher would), freeing the active slot."""
    with session_factory(engine).begin() as s:
        s.execute(update(Pass).where(Pass.active == 1).values(active=None, status=PASS_PUBLISHED))


def check_round(results: list[tuple[int, bool]], engine, callers: int) -> int:
    """Exactly one caller created the pass; everyone got its id; one row is active."""
    assert len(results) == callers, results
    assert Counter(created for _, created in results)[True] == 1, results
    ids = {pass_id for pass_id, _ in results}
    assert len(ids) == 1, results
    assert active_passes(engine) == list(ids)
    return ids.pop()


# -- one pass at a time: threads ------------------------------------------------------------------

def test_simultaneous_starts_in_threads_open_one_pass(tmp_path, db_url):
    from shared.lifecycle import start_pass

    engine = make_engine(db_url, **({"pool_size": THREADS} if db_url.startswith("postgresql") else {}))
    ensure_schema(engine)
    rt = runtime(write_config(tmp_path), db_url, engine)
    opened = []
    try:
        for r in range(THREAD_ROUNDS):
            barrier = threading.Barrier(THREADS)
            results, errors = [], []

            def caller():
                try:
                    barrier.wait(timeout=30)
                    results.append(start_pass(rt, trigger=f"race-{r}"))
                except Exception as exc:  # reported below with the round's results
                    errors.append(repr(exc))

            threads = [threading.Thread(target=caller) for _ in range(THREADS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not errors, errors
            opened.append(check_round(results, engine, THREADS))
            finish_all(engine)
        with engine.connect() as c:
            assert c.scalar(select(func.count()).select_from(Pass)) == THREAD_ROUNDS
    finally:
        engine.dispose()
    assert len(set(opened)) == THREAD_ROUNDS
    # The winner sent the fetch; every loser resumed the same pass (its fetch again, harmless).
    fetches = Counter(kw["pass_id"] for task, kw in rt.dispatcher.sent if task == names.FETCH_PASS)
    assert fetches == {pid: THREADS for pid in opened}


# -- one pass at a time: OS processes -------------------------------------------------------------

def _process_caller(config_path, db_url, start, done, out) -> None:
    """One trigger in its own process: its own engine and runtime, like `arxiv-bot trigger`."""
    from shared.lifecycle import start_pass

    rt = runtime(config_path, db_url)
    try:
        for r in range(PROC_ROUNDS):
            start.wait(timeout=60)
            try:
                out.put(start_pass(rt, trigger=f"proc-{r}"))
            except Exception as exc:
                out.put(("error", repr(exc)))
            done.wait(timeout=60)
    finally:
        rt.engine.dispose()


def test_simultaneous_starts_in_processes_open_one_pass(tmp_path, db_url):
    engine = make_engine(db_url)
    ensure_schema(engine)
    config_path = write_config(tmp_path)
    ctx = multiprocessing.get_context("fork")
    start, done, out = ctx.Barrier(PROCS + 1), ctx.Barrier(PROCS + 1), ctx.Queue()
    procs = [ctx.Process(target=_process_caller, args=(config_path, db_url, start, done, out)) for _ in range(PROCS)]
    for p in procs:
        p.start()
    try:
        for _ in range(PROC_ROUNDS):
            start.wait(timeout=60)
            results = [out.get(timeout=60) for _ in range(PROCS)]
            assert not [r for r in results if r[0] == "error"], results
            check_round(results, engine, PROCS)
            finish_all(engine)
            done.wait(timeout=60)
        for p in procs:
            p.join(30)
        assert [p.exitcode for p in procs] == [0] * PROCS
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        engine.dispose()


# -- the sweep ------------------------------------------------------------------------------------

STUCK = 60  # sweep.stuck_after_seconds in these tests
OLD = dt.timedelta(seconds=STUCK * 10)
DAY = dt.date(2024, 11, 28)


@pytest.fixture
def swept(tmp_path, db_url):
    """A migrated database and a runtime whose sweep considers work stuck after 60 s."""
    engine = make_engine(db_url)
    ensure_schema(engine)
    rebuild_watches()
    rt = runtime(write_config(tmp_path, sweep={"interval_seconds": 5, "stuck_after_seconds": STUCK}), db_url, engine)
    yield rt, session_factory(engine)
    engine.dispose()


def rebuild_watches() -> None:
    """shared.watches builds its WATCHES (the scoring and publishing watches from a factory) at
    import; the sweep reads them at each call. Built again here, in the test, so the factory's
    code runs under the test (the mutation check forks after import: see docs/MUTATION.md)."""
    import importlib

    from shared import watches

    importlib.reload(watches)


def seed(S, status: str, jobs: dict[str, dict] | None = None, profiles: dict[str, dict] | None = None,
         pass_age: dt.timedelta = OLD) -> int:
    """An active pass in `status` with summary jobs {paper_id: SummaryJob fields (+ "age",
    "lease": (version, language, seconds until expiry) of a leased summary row)} and pass
    profiles {slug: PassProfile fields (+ "age")}."""
    now = utcnow()
    with S.begin() as s:
        p = Pass(status=status, active=1, trigger="test", day=DAY)
        s.add(p)
        s.flush()
        for priority, (pid, spec) in enumerate((jobs or {}).items()):
            spec = dict(spec)
            age, lease = spec.pop("age", OLD), spec.pop("lease", None)
            version, language = spec.pop("version", 1), spec.pop("language", "en")
            if s.get(Paper, pid) is None:
                s.add(Paper(id=pid, version=version, title=f"Paper {pid}", abstract="A.", authors=["A"],
                            primary_category="cs.LG", categories=["cs.LG"], announced=DAY, version_announced=DAY))
                s.flush()
            s.add(SummaryJob(pass_id=p.id, paper_id=pid, language=language, version=version, updated_at=now - age,
                             **{"state": SUM_PENDING, "priority": priority, **spec}))
            if lease is not None:
                l_version, l_language, expires_in = lease
                s.add(Summary(paper_id=pid, version=l_version, model="m", prompt_hash="h", language=l_language,
                              input_mode="abstract", status=SUMMARY_LEASED, lease_owner="peer:1:1",
                              lease_expires_at=now + dt.timedelta(seconds=expires_in)))
        for slug, spec in (profiles or {}).items():
            spec = dict(spec)
            age = spec.pop("age", OLD)
            s.add(PassProfile(pass_id=p.id, profile=slug, updated_at=now - age,
                              **{"scored": False, "published": False, **spec}))
        s.flush()
        s.execute(update(Pass).where(Pass.id == p.id).values(updated_at=now - pass_age))
        return p.id


def sent(rt) -> list[tuple[str, dict]]:
    out = list(rt.dispatcher.sent)
    rt.dispatcher.sent.clear()
    return out


def age_everything(S) -> None:
    old = utcnow() - OLD
    with S.begin() as s:
        s.execute(update(SummaryJob).values(updated_at=old))
        s.execute(update(PassProfile).values(updated_at=old))
        s.execute(update(Pass).values(updated_at=old))


def job(pass_id: int, paper_id: str, language: str = "en") -> tuple[str, dict]:
    return (names.SUMMARIZE_PAPER, {"pass_id": pass_id, "paper_id": paper_id, "language": language})


def test_sweep_resends_stuck_summaries_only(swept, caplog):
    from shared.lifecycle import sweep

    rt, S = swept
    caplog.set_level(logging.INFO, logger="shared.lifecycle")
    pass_id = seed(S, PASS_SUMMARIZING, {
        "2411.00001": {},                                         # stuck: re-sent
        "2411.00002": {"age": dt.timedelta(seconds=5)},           # touched 5 s ago: left alone
        "2411.00003": {"lease": (1, "en", 600)},                  # a worker is calling: left alone
        "2411.00004": {"lease": (1, "en", -30)},                  # its worker died: re-sent
        "2411.00005": {"version": 2, "lease": (1, "en", 600)},    # live lease on an older version
        "2411.00006": {"language": "zh", "lease": (1, "en", 600)},  # live lease in another language
        "2411.00007": {"state": SUM_DONE},                        # finished
    })
    assert sweep(rt) == 4
    assert sent(rt) == [job(pass_id, "2411.00001"), job(pass_id, "2411.00004"), job(pass_id, "2411.00005"),
                        job(pass_id, "2411.00006", "zh")]
    assert sweep(rt) == 0 and sent(rt) == []  # what it re-sent counts as touched
    # What the fault tests and operators read in the fetcher's log:
    assert [r.getMessage() for r in caplog.records] == [f"sweep: pass {pass_id} (summarizing): re-enqueued 4 messages (1 from dead workers, 3 lost)"]
    age_everything(S)
    assert sweep(rt) == 5  # stuck again: the recent one too now, never the live lease
    assert {kw["paper_id"] for _, kw in sent(rt)} == {"2411.00001", "2411.00002", "2411.00004", "2411.00005",
                                                      "2411.00006"}
    with S() as s:
        assert s.get(Pass, pass_id).status == PASS_SUMMARIZING


def test_sweep_resends_stuck_scoring_and_nudges_a_lost_planning(swept):
    from shared.lifecycle import sweep

    rt, S = swept
    pass_id = seed(S, PASS_SCORING, profiles={"alpha": {}, "beta": {"age": dt.timedelta(seconds=1)},
                                              "gamma": {"scored": True}})
    assert sweep(rt) == 1
    assert sent(rt) == [(names.SCORE_PROFILES, {"pass_id": pass_id, "profiles": ["alpha"]})]
    assert sweep(rt) == 0 and sent(rt) == []  # beta is being scored right now; alpha was just sent
    with S.begin() as s:  # every profile scored, but the planning never ran (its scorer died)
        s.execute(update(PassProfile).values(scored=True))
    age_everything(S)
    assert sweep(rt) == 1 and sent(rt) == [(names.SCORE_PROFILES, {"pass_id": pass_id, "profiles": []})]
    assert sweep(rt) == 0 and sent(rt) == []  # the nudge is sent once per stuck age


def test_sweep_resends_only_the_active_passs_profiles(swept):
    from shared.lifecycle import sweep

    rt, S = swept
    seed(S, PASS_SCORING, profiles={"left": {}})  # left unscored when that pass ended
    finish_all(S.kw["bind"])
    pass_id = seed(S, PASS_SCORING, profiles={"alpha": {}})
    assert sweep(rt) == 1 and sent(rt) == [(names.SCORE_PROFILES, {"pass_id": pass_id, "profiles": ["alpha"]})]


def test_sweep_resends_stuck_publishing_and_nudges_an_unclosed_pass(swept):
    from shared.lifecycle import sweep

    rt, S = swept
    pass_id = seed(S, PASS_PUBLISHING, profiles={"alpha": {"scored": True}, "beta": {"scored": True, "published": True},
                                                 "gamma": {"scored": True, "age": dt.timedelta(seconds=1)}})
    assert sweep(rt) == 1 and sent(rt) == [(names.PUBLISH_PROFILES, {"pass_id": pass_id, "profiles": ["alpha"]})]
    assert sweep(rt) == 0 and sent(rt) == []
    with S.begin() as s:  # every profile published, but the pass was never closed
        s.execute(update(PassProfile).values(published=True))
    assert sweep(rt) == 1 and sent(rt) == [(names.PUBLISH_PROFILES, {"pass_id": pass_id, "profiles": []})]
    assert sweep(rt) == 0 and sent(rt) == []


def test_sweep_leaves_a_recent_fetch_alone_and_nudges_a_stuck_one_once(swept):
    from shared.lifecycle import sweep

    rt, S = swept
    pass_id = seed(S, PASS_FETCHING, pass_age=dt.timedelta(seconds=2))
    assert sweep(rt) == 0 and sent(rt) == []
    age_everything(S)
    assert sweep(rt) == 1 and sent(rt) == [(names.FETCH_PASS, {"pass_id": pass_id})]
    assert sweep(rt) == 0 and sent(rt) == []


def test_sweep_resends_in_priority_order_and_only_the_active_passs_work(swept):
    from shared.lifecycle import sweep

    rt, S = swept
    earlier = seed(S, PASS_SUMMARIZING, {"2411.00001": {}})  # left pending when that pass ended
    finish_all(S.kw["bind"])
    pass_id = seed(S, PASS_SUMMARIZING, {"2411.00009": {}, "2411.00005": {}, "2411.00007": {}})  # priorities 0, 1, 2
    assert sweep(rt) == 3
    assert sent(rt) == [job(pass_id, "2411.00009"), job(pass_id, "2411.00005"), job(pass_id, "2411.00007")]
    with S.begin() as s:  # equal priorities: by paper id
        s.execute(update(SummaryJob).where(SummaryJob.pass_id == pass_id).values(priority=0))
    age_everything(S)
    assert sweep(rt) == 3
    assert sent(rt) == [job(pass_id, "2411.00005"), job(pass_id, "2411.00007"), job(pass_id, "2411.00009")]
    assert earlier != pass_id


def test_freeing_a_dead_owners_summary_leaves_a_lease_taken_over_meanwhile(swept):
    from shared.watches import WATCHES

    rt, S = swept
    pass_id = seed(S, PASS_SUMMARIZING, {"2411.00031": {"lease": (1, "en", -30)}, "2411.00032": {"lease": (1, "en", -30)}})
    watch = next(w for w in WATCHES if w.stage == PASS_SUMMARIZING)
    with S() as s:
        units = watch.find(s, s.get(Pass, pass_id))
    assert [(u.ref[0], u.owner) for u in units] == [("2411.00031", "peer:1:1"), ("2411.00032", "peer:1:1")]
    live = utcnow() + dt.timedelta(seconds=600)
    with S.begin() as s:  # a live worker took .32 over since the sweep looked
        s.execute(update(Summary).where(Summary.paper_id == "2411.00032").values(lease_owner="peer:2:1",
                                                                                 lease_expires_at=live))
    with S.begin() as s:
        watch.free(s, units)
    with S() as s:
        freed, taken = (s.scalars(select(Summary).where(Summary.paper_id == pid)).one()
                        for pid in ("2411.00031", "2411.00032"))
        assert (freed.status, freed.lease_owner) == (SUMMARY_LEASED, None) and freed.lease_expires_at <= utcnow()
        assert (taken.status, taken.lease_owner, taken.lease_expires_at) == (SUMMARY_LEASED, "peer:2:1", live)


def test_sweep_frees_a_dead_fetchers_claim_at_once_and_leaves_a_live_one(swept):
    from shared.lifecycle import sweep

    rt, S = swept
    now = utcnow()
    pass_id = seed(S, PASS_FETCHING)  # untouched for long: only the claim's expiry decides
    with S.begin() as s:  # a fetcher is downloading (its claim renewed)
        s.execute(update(Pass).values(fetch_owner="peer:1:1", fetch_lease_expires_at=now + dt.timedelta(seconds=600),
                                      updated_at=now - OLD))
    assert sweep(rt) == 0 and sent(rt) == []
    with S.begin() as s:  # its claim ran out (the fetcher died): re-sent and freed at once, however recent
        s.execute(update(Pass).values(fetch_lease_expires_at=now - dt.timedelta(seconds=1),
                                      updated_at=now - dt.timedelta(seconds=1)))
    assert sweep(rt) == 1 and sent(rt) == [(names.FETCH_PASS, {"pass_id": pass_id})]
    with S() as s:
        p = s.get(Pass, pass_id)
        assert (p.fetch_owner, p.fetch_lease_expires_at, p.status) == (None, None, PASS_FETCHING)
    assert sweep(rt) == 0 and sent(rt) == []  # touched and free: not again before the stuck age
    from shared.watches import WATCHES

    watch = next(w for w in WATCHES if w.stage == PASS_FETCHING)
    with S.begin() as s:  # the dead fetcher's claim, found by a sweep...
        s.execute(update(Pass).values(fetch_owner="peer:1:1", fetch_lease_expires_at=now - dt.timedelta(seconds=1)))
    with S() as s:
        units = watch.find(s, s.get(Pass, pass_id))
    with S.begin() as s:  # ...is taken over by a live fetcher before the sweep frees it: the live claim stays
        s.execute(update(Pass).values(fetch_owner="peer:2:1", fetch_lease_expires_at=now + dt.timedelta(seconds=600)))
    with S.begin() as s:
        watch.free(s, units)
    with S() as s:
        assert s.get(Pass, pass_id).fetch_owner == "peer:2:1"


def test_one_fetch_claim_renewed_and_given_up_only_by_its_owner(swept):
    """claim_fetch: one claim of a fetching pass at a time, taken over when it expired or its
    owner is known dead; renew_fetch extends or gives up the caller's own claim, never another's."""
    rt, S = swept
    pass_id = seed(S, PASS_FETCHING)

    def claim(owner, dead=None, seconds=60):
        with S.begin() as s:
            return passes.claim_fetch(s, pass_id, owner, seconds, dead_owner=dead)

    def holder():
        with S() as s:
            p = s.get(Pass, pass_id)
            return p.fetch_owner, p.fetch_lease_expires_at

    before = utcnow()
    assert claim("a:1:1") and not claim("b:1:1")
    owner, expires = holder()
    assert owner == "a:1:1" and before + dt.timedelta(seconds=59) < expires <= utcnow() + dt.timedelta(seconds=60)
    with S.begin() as s:
        passes.renew_fetch(s, pass_id, "b:1:1", 600)  # not b's claim: nothing changes
        passes.renew_fetch(s, pass_id, "b:1:1", None)
    assert holder() == (owner, expires)
    with S.begin() as s:
        passes.renew_fetch(s, pass_id, "a:1:1", 600)
    owner, renewed = holder()
    assert owner == "a:1:1" and renewed > utcnow() + dt.timedelta(seconds=590)
    assert not claim("b:1:1", dead="c:1:1")  # a dead process that is not the holder frees nothing
    assert claim("b:1:1", dead="a:1:1") and holder()[0] == "b:1:1"  # the holder known dead: taken over
    with S.begin() as s:
        passes.renew_fetch(s, pass_id, "a:1:1", None)  # the old owner cannot give up b's claim
    assert holder()[0] == "b:1:1"
    with S.begin() as s:
        passes.renew_fetch(s, pass_id, "b:1:1", None)
    assert holder() == (None, None) and claim("c:1:1")
    with S.begin() as s:  # an expired claim is free for anyone
        s.execute(update(Pass).where(Pass.id == pass_id).values(fetch_lease_expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert claim("d:1:1") and holder()[0] == "d:1:1"
    with S.begin() as s:  # only while the pass is fetching
        s.execute(update(Pass).where(Pass.id == pass_id).values(status=PASS_SCORING, fetch_owner=None))
    assert not claim("e:1:1")


def test_sweep_closes_a_finished_summarizing_stage_and_ignores_finished_passes(swept):
    from shared.lifecycle import sweep

    rt, S = swept
    pass_id = seed(S, PASS_SUMMARIZING, {"2411.00021": {"state": SUM_DONE}},
                   profiles={"alpha": {"scored": True}, "beta": {"scored": True}})
    assert sweep(rt) == 1
    assert sent(rt) == [(names.PUBLISH_PROFILES, {"pass_id": pass_id, "profiles": ["alpha", "beta"]})]
    with S() as s:
        assert s.get(Pass, pass_id).status == PASS_PUBLISHING
    finish_all(S.kw["bind"])
    assert sweep(rt) == 0 and sent(rt) == []  # no active pass: nothing to do


def test_start_pass_resumes_the_active_pass(swept, caplog):
    """A second start while a pass is active returns it (not new) and re-sends what it needs."""
    from shared.lifecycle import start_pass

    rt, S = swept
    caplog.set_level(logging.INFO, logger="shared.lifecycle")
    first = start_pass(rt)  # beat's call: the default trigger
    assert sent(rt) == [(names.FETCH_PASS, {"pass_id": first[0]})] and first[1] is True
    assert caplog.records == []  # a new pass is not a resumption
    assert start_pass(rt, trigger="cli") == (first[0], False)
    assert sent(rt) == [(names.FETCH_PASS, {"pass_id": first[0]})]
    assert [r.getMessage() for r in caplog.records] == \
        [f"pass {first[0]} already active (fetching); resuming it (1 messages)"]
    with S() as s:
        p = s.get(Pass, first[0])
        assert (p.trigger, p.status, p.active, p.no_summaries) == ("beat", PASS_FETCHING, 1, False)
    finish_all(S.kw["bind"])
    second = start_pass(rt, trigger="cli", no_summaries=True)
    assert second == (first[0] + 1, True)
    with S() as s:
        assert s.get(Pass, second[0]).no_summaries is True


# -- transitions and helpers, one by one ------------------------------------------------------------

def test_resume_resends_everything_unfinished_at_once(swept):
    """Resuming (start_pass on an active pass) has no age filter and ignores leases: every
    message that may have been lost is sent again; handlers ignore what is done."""
    from shared.lifecycle import start_pass

    rt, S = swept
    pass_id = seed(S, PASS_SUMMARIZING, {"2411.00031": {"age": dt.timedelta(0)},
                                        "2411.00032": {"lease": (1, "en", 600)},
                                        "2411.00033": {"state": SUM_DONE}})
    assert start_pass(rt) == (pass_id, False)
    assert sent(rt) == [job(pass_id, "2411.00031"), job(pass_id, "2411.00032")]
    finish_all(S.kw["bind"])
    pass_id = seed(S, PASS_SCORING, profiles={"alpha": {"age": dt.timedelta(0)}, "beta": {"scored": True},
                                              "gamma": {}})
    assert start_pass(rt) == (pass_id, False)
    assert sent(rt) == [(names.SCORE_PROFILES, {"pass_id": pass_id, "profiles": ["alpha", "gamma"]})]
    finish_all(S.kw["bind"])
    # Every profile scored, the planning never ran: the scorer is nudged to plan.
    pass_id = seed(S, PASS_SCORING, profiles={"alpha": {"scored": True}}, pass_age=dt.timedelta(0))
    assert start_pass(rt) == (pass_id, False)
    assert sent(rt) == [(names.SCORE_PROFILES, {"pass_id": pass_id, "profiles": []})]
    finish_all(S.kw["bind"])
    # Publishing: the unpublished profiles in batches of PUBLISH_BATCH, in order.
    slugs = {f"p{i:03d}": {"scored": True, "published": i % 3 == 0} for i in range(1, 2 * passes.PUBLISH_BATCH + 5)}
    pass_id = seed(S, PASS_PUBLISHING, profiles=slugs, pass_age=dt.timedelta(0))
    todo = sorted(slug for slug, spec in slugs.items() if not spec["published"])
    assert start_pass(rt) == (pass_id, False)
    assert sent(rt) == [(names.PUBLISH_PROFILES, {"pass_id": pass_id, "profiles": todo[i:i + passes.PUBLISH_BATCH]})
                        for i in range(0, len(todo), passes.PUBLISH_BATCH)]
    finish_all(S.kw["bind"])
    # Every profile published, the pass never closed: a publisher is asked to close it.
    pass_id = seed(S, PASS_PUBLISHING, profiles={"alpha": {"scored": True, "published": True}})
    assert start_pass(rt) == (pass_id, False)
    assert sent(rt) == [(names.PUBLISH_PROFILES, {"pass_id": pass_id, "profiles": []})]
    finish_all(S.kw["bind"])
    # Summarizing with no job left: the stage is closed on resuming, publishing sent.
    pass_id = seed(S, PASS_SUMMARIZING, {"2411.00034": {"state": SUM_DONE}},
                   profiles={"alpha": {"scored": True}, "beta": {"scored": True}})
    assert start_pass(rt) == (pass_id, False)
    assert sent(rt) == [(names.PUBLISH_PROFILES, {"pass_id": pass_id, "profiles": ["alpha", "beta"]})]
    with S() as s:
        assert s.get(Pass, pass_id).status == PASS_PUBLISHING


def test_terminal_transitions_record_why_and_free_the_slot(swept):
    from shared import passes
    from shared.models import PASS_EMPTY, PASS_FAILED

    rt, S = swept
    with S.begin() as s:
        failed = Pass(status=PASS_FETCHING, active=1, trigger="test")
        s.add(failed)
        s.flush()
        assert passes.fetch_failed(s, failed.id, "arXiv said no " + "x" * 3000) is True
        assert passes.fetch_failed(s, failed.id, "again") is False  # terminal already: nothing changes
    with S() as s:
        p = s.get(Pass, failed.id)
        assert (p.status, p.active) == (PASS_FAILED, None) and p.finished_at is not None
        assert p.error.startswith("arXiv said no ") and len(p.error) == 2000
    with S.begin() as s:
        empty = Pass(status=PASS_FETCHING, active=1, trigger="test")
        s.add(empty)
        s.flush()
        assert passes.no_announcement(s, empty.id, "2024-11-30") is True
    with S() as s:
        p = s.get(Pass, empty.id)
        assert (p.status, p.active, p.note, p.error) == (PASS_EMPTY, None, "no announcement (2024-11-30)", None)
    with S.begin() as s:  # a transition from the wrong state does nothing
        scoring = Pass(status=PASS_SCORING, active=1, trigger="test")
        s.add(scoring)
        s.flush()
        assert passes.no_announcement(s, scoring.id, "2024-11-30") is False
        assert passes.fetch_failed(s, scoring.id, "a late fetch failure") is False
        assert passes.close_publishing(s, scoring.id) is False
        assert passes.fetched(s, scoring.id, 3, ["default"]) == []
        assert passes.claim_publishing(s, scoring.id, ["default"]) == []
        assert passes.advance(s, scoring.id, PASS_FETCHING, PASS_SCORING) is False
        assert passes.advance(s, scoring.id, PASS_SCORING, PASS_SUMMARIZING) is True
    with S() as s:
        assert s.get(Pass, scoring.id).status == PASS_SUMMARIZING


def test_fetched_batches_and_touches_cover_every_profile(swept):
    from shared import passes

    rt, S = swept
    slugs = [f"p{i:04d}" for i in range(1201)]
    with S.begin() as s:
        p = Pass(status=PASS_FETCHING, active=1, trigger="test")
        s.add(p)
        s.flush()
        work = passes.fetched(s, p.id, 42, slugs, day=DAY)
        pass_id = p.id
    assert [len(kw["profiles"]) for _, kw in work] == [200] * 6 + [1]
    assert [x for _, kw in work for x in kw["profiles"]] == slugs and {t for t, _ in work} == {names.SCORE_PROFILES}
    with S() as s:
        row = s.get(Pass, pass_id)
        assert (row.status, row.fetched, row.day) == (PASS_SCORING, 42, DAY)
        assert s.scalar(select(func.count()).select_from(PassProfile).where(
            PassProfile.pass_id == pass_id, PassProfile.scored.is_(False), PassProfile.published.is_(False),
            PassProfile.candidates == 0, PassProfile.selected == 0)) == 1201
    age_everything(S)
    before = utcnow()
    with S.begin() as s:
        passes.touch(s, pass_id, work)
    with S() as s:
        assert s.scalar(select(func.count()).select_from(PassProfile).where(PassProfile.updated_at < before)) == 0
        assert s.get(Pass, pass_id).updated_at < before  # profile messages do not touch the pass


def test_summaries_off_reasons(tmp_path, sqlite_url):
    from shared import passes

    engine = make_engine(sqlite_url)
    off = runtime(write_config(tmp_path, ai_summary={"enabled": False}), sqlite_url, engine)
    p = Pass(no_summaries=False)
    assert passes.summaries_off_reason(off.config, off.settings, p) == \
        "AI summaries disabled in config.json (ai_summary.enabled is false)"
    assert passes.summaries_off_reason(off.config, off.settings, Pass(no_summaries=True)) == \
        "AI summaries turned off for this run (--no-summaries)"
    home = tmp_path / "on"
    home.mkdir()
    on = runtime(write_config(home), sqlite_url, engine)
    assert passes.summaries_off_reason(on.config, on.settings, p) == \
        f"AI summaries disabled: set {on.settings.llm_key_env}"
    engine.dispose()


def test_close_scoring_waits_for_every_profile_of_its_pass(swept):
    """scoring -> summarizing only when no profile of THIS pass is unscored; the winner plans
    the summaries once, in the same transaction, and sends one message per job."""
    from shared import passes

    rt, S = swept
    planned = []

    def plan(session, p):
        planned.append(p.id)
        return [("2411.00051", "en"), ("2411.00052", "zh")]

    old = seed(S, PASS_SCORING, profiles={"left-over": {}})  # an unscored profile of another pass
    finish_all(S.kw["bind"])
    pass_id = seed(S, PASS_SCORING, profiles={"alpha": {"scored": True}, "beta": {}})
    with S.begin() as s:
        assert passes.close_scoring(s, pass_id, plan) == [] and planned == []  # beta is not scored yet
        s.execute(update(PassProfile).where(PassProfile.pass_id == pass_id).values(scored=True))
    with S.begin() as s:
        assert passes.close_scoring(s, pass_id, plan) == [job(pass_id, "2411.00051"), job(pass_id, "2411.00052", "zh")]
        assert passes.close_scoring(s, pass_id, plan) == []  # the second caller loses the flip
    assert planned == [pass_id] and old != pass_id
    with S() as s:
        assert s.get(Pass, pass_id).status == PASS_SUMMARIZING


def test_profile_published_marks_only_that_profile_of_that_pass(swept):
    from shared import passes

    rt, S = swept
    other = seed(S, PASS_PUBLISHING, profiles={"alpha": {"scored": True}})
    finish_all(S.kw["bind"])
    pass_id = seed(S, PASS_PUBLISHING, profiles={"alpha": {"scored": True}, "beta": {"scored": True}})
    before = utcnow()
    with S.begin() as s:
        assert sorted(passes.claim_publishing(s, pass_id, ["alpha", "beta", "nope"])) == ["alpha", "beta"]
        passes.profile_published(s, pass_id, "alpha")
        assert passes.close_publishing(s, pass_id) is False  # beta is not published yet
    with S() as s:
        rows = {(r.pass_id, r.profile): r for r in s.scalars(select(PassProfile))}
    assert rows[(pass_id, "alpha")].published and rows[(pass_id, "alpha")].updated_at >= before
    assert not rows[(pass_id, "beta")].published and not rows[(other, "alpha")].published
    with S.begin() as s:
        assert passes.claim_publishing(s, pass_id, ["alpha", "beta"]) == ["beta"]  # alpha is done
        passes.profile_published(s, pass_id, "beta")
        assert passes.close_publishing(s, pass_id) is True and passes.close_publishing(s, pass_id) is False
    with S() as s:
        p = s.get(Pass, pass_id)
        assert (p.status, p.active) == (PASS_PUBLISHED, None)


def test_touch_marks_exactly_what_the_work_resends(swept):
    """passes.touch (the sweep's "just re-sent" mark): the profiles named in the messages (more
    than one 1000-row chunk), the summary jobs by paper AND language, and the pass itself only
    for a message naming neither (a nudge) and only while it is active; never another pass's rows."""
    from shared import passes

    rt, S = swept
    slugs = [f"p{i:04d}" for i in range(1203)]
    other = seed(S, PASS_SUMMARIZING, jobs={"2411.00061": {}}, profiles={s: {} for s in slugs[:3]})
    finish_all(S.kw["bind"])
    pass_id = seed(S, PASS_SUMMARIZING, jobs={"2411.00061": {}, "2411.00062": {}},
                   profiles={**{s: {} for s in slugs}, "left-alone": {}})
    with S.begin() as s:  # the same paper in a second language, not re-sent
        s.add(SummaryJob(pass_id=pass_id, paper_id="2411.00061", language="zh", version=1, priority=9,
                         state=SUM_PENDING, updated_at=utcnow() - OLD))

    def fresh(before) -> dict:
        with S() as s:
            return {"profiles": {(r.pass_id, r.profile) for r in s.scalars(select(PassProfile))
                                 if r.updated_at >= before},
                    "jobs": {(r.pass_id, r.paper_id, r.language) for r in s.scalars(select(SummaryJob))
                             if r.updated_at >= before},
                    "passes": {r.id for r in s.scalars(select(Pass)) if r.updated_at >= before}}

    before = utcnow()
    work = passes._batches(names.PUBLISH_PROFILES, pass_id, slugs, 1000) + [job(pass_id, "2411.00061")]
    with S.begin() as s:
        passes.touch(s, pass_id, work)
    assert fresh(before) == {"profiles": {(pass_id, slug) for slug in slugs},
                             "jobs": {(pass_id, "2411.00061", "en")}, "passes": set()}

    for nudge in ([(names.FETCH_PASS, {"pass_id": pass_id})],
                  [(names.SCORE_PROFILES, {"pass_id": pass_id, "profiles": []})]):
        age_everything(S)
        before = utcnow()
        with S.begin() as s:
            passes.touch(s, other, nudge)  # a finished pass is never marked
        assert fresh(before) == {"profiles": set(), "jobs": set(), "passes": set()}
        with S.begin() as s:
            passes.touch(s, pass_id, nudge)
        assert fresh(before) == {"profiles": set(), "jobs": set(), "passes": {pass_id}}


def test_a_late_message_for_a_finished_pass_moves_nothing_of_the_active_one(swept):
    """Every transition and claim names its pass: a message of a pass that already finished
    (redelivered, or resent before it closed) arriving while the next pass sits in the same
    state changes nothing of that next pass, whatever the state."""
    from shared.models import PASS_FAILED

    rt, S = swept
    old = seed(S, PASS_FETCHING)
    with S.begin() as s:
        assert passes.fetch_failed(s, old, "arXiv is down")
    with S.begin() as s:  # the old pass's claim was never given up (its fetcher died holding it)
        s.execute(update(Pass).where(Pass.id == old).values(fetch_owner="f:1:1",
                                                            fetch_lease_expires_at=utcnow() + OLD))
    active = seed(S, PASS_FETCHING)

    def state(pass_id):
        with S() as s:
            p = s.get(Pass, pass_id)
            return p.status, p.active, p.fetch_owner, p.fetch_lease_expires_at, p.fetched, p.error, p.note

    fetching = state(active)
    with S.begin() as s:
        assert passes.claim_fetch(s, old, "f:1:1", 60) is False
        assert passes.fetched(s, old, 9, ["alpha"]) == []
        assert passes.advance(s, old, PASS_FETCHING, PASS_SCORING) is False
        assert passes.fetch_failed(s, old, "late") is False
        assert passes.no_announcement(s, old, "2024-11-30") is False
    assert state(active) == fetching
    with S.begin() as s:  # the new pass's own claim renews only there
        assert passes.claim_fetch(s, active, "f:1:1", 60)
        passes.renew_fetch(s, active, "f:1:1", None)
    assert state(active) == fetching
    assert state(old)[:3] == (PASS_FAILED, None, "f:1:1")  # not the old pass's (it was left as it was)

    finish_all(S.kw["bind"])  # published, every profile of it
    publishing = seed(S, PASS_PUBLISHING, profiles={"alpha": {"scored": True}})
    with S.begin() as s:  # a stale close of the published pass does not finish the publishing one
        assert passes.close_publishing(s, active) is False
    assert state(publishing)[:2] == (PASS_PUBLISHING, 1)


def test_close_summarizing_waits_for_every_pending_summary_of_its_pass(swept):
    """summarizing -> publishing only when no summary job of THIS pass is pending (a job left
    pending by an older pass does not hold it); then every profile's publication, in batches."""
    rt, S = swept
    old = seed(S, PASS_SUMMARIZING, {"2411.00071": {}})  # pending, of a pass that ended
    finish_all(S.kw["bind"])
    pass_id = seed(S, PASS_SUMMARIZING, {"2411.00072": {"state": SUM_DONE}, "2411.00073": {}},
                   profiles={"beta": {"scored": True}, "alpha": {"scored": True}})
    with S.begin() as s:
        assert passes.close_summarizing(s, pass_id) == []  # 2411.00073 is pending
    with S() as s:
        assert s.get(Pass, pass_id).status == PASS_SUMMARIZING
    with S.begin() as s:
        s.execute(update(SummaryJob).where(SummaryJob.pass_id == pass_id).values(state=SUM_DONE))
    with S.begin() as s:
        assert passes.close_summarizing(s, pass_id) == [
            (names.PUBLISH_PROFILES, {"pass_id": pass_id, "profiles": ["alpha", "beta"]})]
        assert passes.close_summarizing(s, pass_id) == []  # once
    with S() as s:
        assert s.get(Pass, pass_id).status == PASS_PUBLISHING and old != pass_id


def test_a_publishing_batch_claims_only_its_own_profiles(swept):
    rt, S = swept
    pass_id = seed(S, PASS_PUBLISHING, profiles={"alpha": {"scored": True}, "beta": {"scored": True}})
    with S.begin() as s:
        assert passes.claim_publishing(s, pass_id, ["beta", "nope"]) == ["beta"]


def test_resume_sends_summaries_by_priority_then_paper_and_profiles_in_name_order(swept):
    """The resume's order: summary jobs best first (priority), equal priorities by paper id;
    profile batches by slug, however the rows were written."""
    from shared.lifecycle import start_pass

    rt, S = swept
    pass_id = seed(S, PASS_SUMMARIZING, {"2411.00085": {"priority": 2}, "2411.00084": {"priority": 0},
                                        "2411.00083": {"priority": 1}, "2411.00082": {"priority": 1},
                                        "2411.00081": {"priority": 3}})
    assert start_pass(rt) == (pass_id, False)
    assert sent(rt) == [job(pass_id, pid) for pid in ("2411.00084", "2411.00082", "2411.00083", "2411.00085",
                                                      "2411.00081")]
    finish_all(S.kw["bind"])
    slugs = ["mu", "alpha", "zeta", "beta", "kappa"]
    pass_id = seed(S, PASS_SCORING, profiles={slug: {} for slug in slugs})
    assert start_pass(rt) == (pass_id, False)
    assert sent(rt) == [(names.SCORE_PROFILES, {"pass_id": pass_id, "profiles": sorted(slugs)})]

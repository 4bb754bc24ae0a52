"""The sweep's decision with real Redis (issue 15): queued, held, live lease, dead owner, lost.

In-process, on SQLite and PostgreSQL, against a real Redis database: messages are put on the
summarize queue by Celery itself (kombu's own format), liveness keys are written by a real
Heartbeat. A unit is re-sent only when nobody is doing it: queued work and work held by a live
process get no duplicate nudge however old, a lease whose owner is known dead is re-sent at once
(its lease younger than any stuck age), and after a FLUSHALL nobody is judged dead until every
live process has had the time to write its key again.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time

import pytest
import redis

from shared import liveness, names
from shared.db import ensure_schema, make_engine, session_factory
from shared.models import PASS_SUMMARIZING, SUMMARY_LEASED, Summary
from tests.procs import write_config
from tests.test_shared_passes import job, runtime, seed, sent

OWNER_DEAD = "peer-a:101:1"
OWNER_LIVE = "peer-b:202:1"
OWNER_UNKNOWN = "peer-c:303:1"


@pytest.fixture
def world(tmp_path, db_url, redis_url):
    engine = make_engine(db_url)
    ensure_schema(engine)
    rt = runtime(write_config(tmp_path, sweep={"interval_seconds": 5, "stuck_after_seconds": 60}), db_url, engine)
    rt.settings = dataclasses.replace(rt.settings, redis_url=redis_url, broker_url=redis_url)
    r = redis.Redis.from_url(redis_url)
    yield rt, session_factory(engine), r
    r.close()
    engine.dispose()


def lease(S, pid: str, owner: str, seconds: float = 30) -> None:
    with S.begin() as s:
        s.add(Summary(paper_id=pid, version=1, model="m", prompt_hash="h", language="en", input_mode="abstract",
                      status=SUMMARY_LEASED, lease_owner=owner, lease_expires_at=_in(seconds)))


def _in(seconds: float):
    from shared.models import utcnow

    return utcnow() + dt.timedelta(seconds=seconds)


def enqueue_for_real(rt, pass_id: int, paper_id: str) -> None:
    """A summarize message on the real queue, written by Celery (kombu's format)."""
    from shared.celery_app import create_app
    from shared.dispatch import CeleryDispatcher

    CeleryDispatcher(create_app(rt.settings, rt.config)).send(names.SUMMARIZE_PAPER, job(pass_id, paper_id)[1])


def alive(r, owner: str, held: list[str], since_ago: float = 3600) -> None:
    proc = ":".join(owner.split(":")[:2])
    r.set(liveness.PREFIX + proc, json.dumps(held), ex=int(liveness.TTL))
    r.set(liveness.SINCE, time.time() - since_ago)


def test_only_work_nobody_is_doing_is_resent(world):
    from shared.lifecycle import sweep

    rt, S, r = world
    pass_id = seed(S, PASS_SUMMARIZING, {pid: {} for pid in
                                         ("2411.00001", "2411.00002", "2411.00003", "2411.00004", "2411.00005")})
    # .01 lost (old, no message); .02 queued and waiting; .03 held by a live process (e.g. its
    # countdown); .04 leased by a live owner; .05 leased by an owner whose key is gone.
    enqueue_for_real(rt, pass_id, "2411.00002")
    alive(r, OWNER_LIVE, [f"summarize:{pass_id}:2411.00003:en"])
    lease(S, "2411.00004", OWNER_LIVE)
    lease(S, "2411.00005", OWNER_DEAD)
    assert sweep(rt) == 2
    assert sent(rt) == [job(pass_id, "2411.00001"), job(pass_id, "2411.00005")]
    with S() as s:  # the dead owner's lease is freed, so the re-sent message takes it over at once
        freed = s.query(Summary).filter_by(paper_id="2411.00005").one()
        assert freed.lease_owner is None and freed.lease_expires_at <= _in(0)
        assert s.query(Summary).filter_by(paper_id="2411.00004").one().lease_owner == OWNER_LIVE
    # Backlogs get no duplicate nudges, however often the sweep runs.
    assert sweep(rt, force=True) == 0 and sent(rt) == []


def test_queued_and_held_profile_batches_are_not_resent(world):
    """Scoring (and publishing) units against real Redis: a score batch waiting in its queue and
    one held by a live process are left alone; only the lost profile is re-sent."""
    from shared.celery_app import create_app
    from shared.dispatch import CeleryDispatcher
    from shared.lifecycle import sweep
    from shared.models import PASS_PUBLISHING, PASS_SCORING
    from tests.test_shared_passes import finish_all, rebuild_watches

    rt, S, r = world
    rebuild_watches()
    dispatcher = CeleryDispatcher(create_app(rt.settings, rt.config))
    for stage, task in ((PASS_SCORING, names.SCORE_PROFILES), (PASS_PUBLISHING, names.PUBLISH_PROFILES)):
        done = {"scored": stage == PASS_PUBLISHING}
        pass_id = seed(S, stage, profiles={"alpha": done, "beta": done, "gamma": done})
        dispatcher.send(task, {"pass_id": pass_id, "profiles": ["alpha"]})
        unit = f"{'score' if task == names.SCORE_PROFILES else 'publish'}:{pass_id}:beta"
        alive(r, OWNER_LIVE, [unit])
        assert sweep(rt, force=True) == 1, stage
        assert sent(rt) == [(task, {"pass_id": pass_id, "profiles": ["gamma"]})]
        finish_all(S.kw["bind"])
        r.flushdb()


def test_a_message_without_a_language_stands_for_every_language_of_its_paper(world):
    """A summarize message sent by hand without a language covers the paper in any language; a
    message in one language covers only that one."""
    from shared.celery_app import create_app
    from shared.dispatch import CeleryDispatcher
    from shared.lifecycle import sweep
    from shared.models import SUM_PENDING, SummaryJob, utcnow

    rt, S, r = world
    pass_id = seed(S, PASS_SUMMARIZING, {"2411.00041": {}, "2411.00042": {}})  # both in "en"
    with S.begin() as s:
        for pid in ("2411.00041", "2411.00042"):
            s.add(SummaryJob(pass_id=pass_id, paper_id=pid, language="zh", version=1, priority=9, state=SUM_PENDING,
                             updated_at=utcnow() - dt.timedelta(hours=1)))
    dispatcher = CeleryDispatcher(create_app(rt.settings, rt.config))
    dispatcher.send(names.SUMMARIZE_PAPER, {"pass_id": pass_id, "paper_id": "2411.00041"})
    dispatcher.send(names.SUMMARIZE_PAPER, {"pass_id": pass_id, "paper_id": "2411.00042", "language": "en"})
    assert sweep(rt, force=True) == 1
    assert sent(rt) == [job(pass_id, "2411.00042", "zh")]


def test_the_lock_makes_one_sweep_per_interval(world):
    from shared.lifecycle import sweep

    rt, S, r = world
    assert sweep(rt) == 0  # nothing to do, but it ran and took the lock
    # 0.9 of sweep.interval_seconds (5 s), in ms; the lower bound leaves 2 s for a stalled host.
    assert 2500 < r.pttl("arxiv-bot:sweep-lock") <= 4500
    seed(S, PASS_SUMMARIZING, {"2411.00011": {}})
    assert sweep(rt) == 0 and sent(rt) == []  # another sweep ran within the interval
    r.delete("arxiv-bot:sweep-lock")
    assert sweep(rt) == 1


def test_nobody_is_judged_dead_while_liveness_rebuilds(world):
    """Right after a FLUSHALL (or a Redis restart) every key is missing: a live lease must not be
    taken for a dead owner's, or its paper would be paid twice."""
    from shared.lifecycle import sweep

    rt, S, r = world
    pass_id = seed(S, PASS_SUMMARIZING, {"2411.00021": {"age": dt.timedelta(seconds=1)}})
    lease(S, "2411.00021", OWNER_UNKNOWN)
    r.flushdb()  # this test's database: what a FLUSHALL does to it
    hb = liveness.Heartbeat(rt.settings.redis_url)
    hb.beat()  # the first live process writes again: the marker says liveness is young
    assert not liveness.Verdict(r).trusted
    assert sweep(rt, force=True) == 0 and sent(rt) == []
    r.set(liveness.SINCE, time.time() - liveness.TTL - liveness.BEAT - 1)  # every live process has written since
    assert liveness.Verdict(r).dead(OWNER_UNKNOWN)
    assert sweep(rt, force=True) == 1 and sent(rt) == [job(pass_id, "2411.00021")]


def test_a_heartbeat_publishes_what_its_process_holds_and_renews_its_leases(redis_url):
    liveness.stop()  # a heartbeat an earlier test left running in this process would renew too
    r = redis.Redis.from_url(redis_url)
    renewed = []
    hb = liveness.Heartbeat(redis_url)
    liveness.REGISTRY.hold(["summarize:1:x:en"])
    try:
        with liveness.hold_lease(lambda: renewed.append(1)):
            hb.beat()
        key = liveness.PREFIX + liveness.process_id()
        assert json.loads(r.get(key)) == ["summarize:1:x:en"] and 0 < r.ttl(key) <= liveness.TTL
        assert renewed == [1]
        hb.beat()
        assert renewed == [1]  # the block ended: no renewal
        v = liveness.Verdict(r)
        assert "summarize:1:x:en" in v.held() and not v.dead(liveness.owner_id())
    finally:
        liveness.REGISTRY.drop(["summarize:1:x:en"])
        r.close()

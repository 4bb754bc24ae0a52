"""Which units have a message waiting in a Redis queue (shared.queued), read from real Redis lists
written by Celery itself (kombu's format, base64 bodies, priority lists), plus the hand-written and
broken messages the sweep must read or skip without failing.
"""
from __future__ import annotations

import dataclasses
import json

import redis

from shared import names
from shared.queued import queued_units, units_of
from tests.procs import write_config
from tests.test_shared_passes import runtime


def test_units_of_every_task():
    assert units_of(names.FETCH_PASS, {"pass_id": 7}) == ["fetch:7"]
    assert units_of(names.SUMMARIZE_PAPER, {"pass_id": 7, "paper_id": "2411.00001", "language": "en"}) == [
        "summarize:7:2411.00001:en"]
    assert units_of(names.SUMMARIZE_PAPER, {"pass_id": 7, "paper_id": "2411.00001"}) == ["summarize:7:2411.00001:None"]
    assert units_of(names.SCORE_PROFILES, {"pass_id": 7, "profiles": ["a", "b"]}) == ["score:7:a", "score:7:b"]
    assert units_of(names.PUBLISH_PROFILES, {"pass_id": 7, "profiles": ["a"]}) == ["publish:7:a"]
    # A batch with no profiles is the nudge that closes the stage.
    assert units_of(names.SCORE_PROFILES, {"pass_id": 7, "profiles": []}) == ["score:7:"]
    assert units_of(names.PUBLISH_PROFILES, {"pass_id": 7}) == ["publish:7:"]
    assert units_of(names.DELIVER, {"delivery_ids": [3, 4]}) == ["deliver:3", "deliver:4"]
    assert units_of(names.DELIVER, {}) == []
    assert units_of(names.START_PASS, {"trigger": "beat"}) == [] and units_of(names.SWEEP, {}) == []


def _raw(task, kwargs, encoding=None) -> bytes:
    body = json.dumps([[], kwargs, {}])
    props = {"body_encoding": encoding} if encoding else {}
    return json.dumps({"headers": {"task": task}, "body": body, "properties": props}).encode()


def test_queued_units_reads_every_queue_and_priority_list(tmp_path, redis_url):
    from shared.celery_app import create_app

    rt = runtime(write_config(tmp_path), "sqlite://")
    rt.settings = dataclasses.replace(rt.settings, redis_url=redis_url, broker_url=redis_url)
    app = create_app(rt.settings, rt.config)
    r = redis.Redis.from_url(redis_url)
    try:
        def send(task, kwargs, **options):
            q = names.TASK_QUEUES[task]
            app.send_task(task, kwargs=kwargs, queue=q, routing_key=q, **options)

        send(names.FETCH_PASS, {"pass_id": 1})
        send(names.SCORE_PROFILES, {"pass_id": 1, "profiles": ["a", "b"]})
        send(names.SUMMARIZE_PAPER, {"pass_id": 1, "paper_id": "x", "language": "en"})
        send(names.SUMMARIZE_PAPER, {"pass_id": 1, "paper_id": "p3", "language": "en"}, priority=3)
        send(names.SUMMARIZE_PAPER, {"pass_id": 1, "paper_id": "p6", "language": "en"}, priority=6)
        send(names.SUMMARIZE_PAPER, {"pass_id": 1, "paper_id": "p9", "language": "en"}, priority=9)
        send(names.PUBLISH_PROFILES, {"pass_id": 1, "profiles": []})
        send(names.DELIVER, {"delivery_ids": [5]})
        send(names.SWEEP, {})  # no unit
        # Celery's own messages carry base64 bodies; one by hand in plain JSON (with or without properties) is
        # read too.
        assert json.loads(r.lindex(names.FETCH_QUEUE, 0))["properties"]["body_encoding"] == "base64"
        r.rpush(names.DELIVER_QUEUE, _raw(names.DELIVER, {"delivery_ids": [6]}),
                json.dumps({"headers": {"task": names.DELIVER}, "body": json.dumps([[], {"delivery_ids": [8]}, {}])}))
        # Unreadable messages are skipped, never fatal: not JSON, no headers, a body of another shape.
        r.rpush(names.DELIVER_QUEUE, b"not json", json.dumps({"body": "[]"}).encode(),
                _raw(names.DELIVER, {"delivery_ids": [7]})[:-1],  # truncated
                json.dumps({"headers": {"task": names.DELIVER}, "body": "[1, 2]"}).encode(),
                json.dumps({"headers": {"task": names.DELIVER}, "body": 5}).encode())
        assert r.llen(names.SUMMARIZE_QUEUE + "\x06\x169") == 1  # kombu's priority lists
        everything = {"fetch:1", "score:1:a", "score:1:b", "summarize:1:x:en", "summarize:1:p3:en",
                      "summarize:1:p6:en", "summarize:1:p9:en", "publish:1:", "deliver:5", "deliver:6", "deliver:8"}
        assert queued_units(r) == everything
        assert queued_units(r, queues=(names.SUMMARIZE_QUEUE,)) == {
            "summarize:1:x:en", "summarize:1:p3:en", "summarize:1:p6:en", "summarize:1:p9:en"}
        r.rpush("other", _raw(names.FETCH_PASS, {"pass_id": 2}))  # a queue that is not ours
        assert queued_units(r) == everything
        assert queued_units(r, queues=()) == set()
    finally:
        r.close()

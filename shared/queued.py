"""Units of work, and which of them have a message waiting in a Redis queue.

A unit is the smallest thing a message asks for, as a string: "fetch:<pass>",
"score:<pass>:<profile>", "summarize:<pass>:<paper>:<language>", "publish:<pass>:<profile>",
"deliver:<row id>". The sweep (shared.lifecycle) compares the units the database says are
unfinished with the units that have a message somewhere: waiting in a queue (read here, from
the kombu Redis lists) or held by a live process (shared.liveness). A batch message with no
profiles (a nudge to close a stage) is the unit "<stage>:<pass>:".
"""
from __future__ import annotations

import base64
import json

from . import names

# kombu's Redis transport keeps a queue's messages in the list named after the queue, and
# messages with a priority in "<queue>\x06\x16<priority>" lists (priority steps 3, 6, 9).
_PRIORITY_LISTS = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def units_of(task: str, kwargs: dict) -> list[str]:
    """The units a message of `task` with `kwargs` asks for."""
    p = kwargs.get("pass_id")
    if task == names.FETCH_PASS:
        return [f"fetch:{p}"]
    if task == names.SUMMARIZE_PAPER:
        return [f"summarize:{p}:{kwargs.get('paper_id')}:{kwargs.get('language')}"]
    if task in (names.SCORE_PROFILES, names.PUBLISH_PROFILES):
        stage = "score" if task == names.SCORE_PROFILES else "publish"
        return [f"{stage}:{p}:{slug}" for slug in kwargs.get("profiles") or [""]]
    if task == names.DELIVER:
        return [f"deliver:{i}" for i in kwargs.get("delivery_ids") or ()]
    return []


def _decode(raw: bytes) -> tuple[str, dict] | None:
    """(task name, kwargs) of one kombu message as stored in Redis, or None if unreadable."""
    try:
        msg = json.loads(raw)
        task = msg["headers"]["task"]
        body = msg["body"]
        if msg.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        _args, kwargs, _embed = json.loads(body)
        return task, kwargs
    except (ValueError, KeyError, TypeError):
        return None


def queued_units(redis, queues=names.QUEUES) -> set[str]:
    """Every unit with a message waiting in one of `queues` (one pipelined LRANGE per list)."""
    lists = [q + suffix for q in queues for suffix in _PRIORITY_LISTS]
    pipe = redis.pipeline()
    for name in lists:
        pipe.lrange(name, 0, -1)
    out: set[str] = set()
    for raws in pipe.execute():
        for raw in raws:
            decoded = _decode(raw)
            if decoded is not None:
                out.update(units_of(*decoded))
    return out

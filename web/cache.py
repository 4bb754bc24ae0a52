"""Per-process response cache keyed by the latest publication.

Responses are built once per publication and kept in memory, keyed by (route, normalised query).
What invalidates them is the publication stamp (shared.digest.publication_stamp: count, newest
day, newest published_at), which is re-read from the database at most once per `ttl` seconds, not
per request: a new publication shows up within about a second, and a burst of requests costs no
database query at all. When the stamp changes, the snapshot (papers of the latest digest, the feed
window, the published days) is reloaded once and every cached response is dropped.

An Entry keeps its compressed variants too (web/encoding.py): each content-coding is made the
first time a client asks for it and then kept with the entry, so at most once per publication.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from werkzeug.http import http_date

from .encoding import MIN_SIZE, compress, variant_etag


@dataclass(frozen=True)
class Entry:
    """A ready response body and its validators (strong ETag = hash of the bytes)."""

    body: bytes
    content_type: str
    etag: str
    last_modified: float | None  # POSIX seconds (the publication time)
    headers: dict = field(default_factory=dict)
    variants: dict = field(default_factory=dict, compare=False, repr=False)  # coding -> Entry

    @classmethod
    def make(cls, body: bytes | str, content_type: str, last_modified: float | None, **headers) -> "Entry":
        data = body.encode("utf-8") if isinstance(body, str) else body
        etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
        # Validators ride along precomputed so a cache hit does no formatting work.
        headers = {"ETag": etag, **({"Last-Modified": http_date(last_modified)} if last_modified else {}), **headers}
        if len(data) >= MIN_SIZE:  # served compressed to clients that accept it
            headers["Vary"] = "Accept-Encoding"
        return cls(data, content_type, etag, last_modified, headers)

    def encoded(self, coding: str | None) -> "Entry":
        """This response in `coding` ('gzip', 'br'; None: as built), compressed on first use and
        kept; its own strong ETag and Content-Encoding. A body below MIN_SIZE is never encoded."""
        if coding is None or len(self.body) < MIN_SIZE:
            return self
        got = self.variants.get(coding)
        if got is None:  # two threads may both compress once; either result is the same bytes
            etag = variant_etag(self.etag, coding)
            got = Entry(compress(self.body, coding), self.content_type, etag, self.last_modified,
                        {**self.headers, "ETag": etag, "Content-Encoding": coding})
            self.variants[coding] = got
        return got


class DigestCache:
    """Holds the snapshot for the current stamp and the responses built from it.

    `read_stamp()` and `load_snapshot(stamp)` are supplied by the app (both hit the database).
    Thread-safe: a lock guards the refresh; readers of a consistent (stamp, snapshot, entries)
    triple never block on each other."""

    def __init__(self, read_stamp: Callable[[], Any], load_snapshot: Callable[[Any], Any],
                 ttl: float = 1.0, max_entries: int = 512):
        self._read_stamp = read_stamp
        self._load_snapshot = load_snapshot
        self.ttl = ttl
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._state: tuple[Any, Any, OrderedDict] | None = None  # (stamp, snapshot, entries)

    def current(self) -> tuple[Any, Any, OrderedDict]:
        """(stamp, snapshot, entries) for the latest publication; re-reads the stamp at most once
        per ttl seconds. Raises whatever the database raises when a check is due and fails."""
        state = self._state
        if state is not None and time.monotonic() - self._checked_at < self.ttl:
            return state
        with self._lock:
            state = self._state
            if state is not None and time.monotonic() - self._checked_at < self.ttl:
                return state  # another thread refreshed it while we waited
            stamp = self._read_stamp()
            if state is None or state[0] != stamp:
                state = (stamp, self._load_snapshot(stamp), OrderedDict())
                self._state = state
            self._checked_at = time.monotonic()
            return state

    def get(self, key, build: Callable[[Any], Entry]) -> Entry:
        """The cached Entry for `key` under the current stamp, building it once if missing."""
        stamp, snapshot, entries = self.current()
        entry = entries.get(key)
        if entry is None:
            entry = build(snapshot)
            entries[key] = entry
            if len(entries) > self.max_entries:  # bound memory: arbitrary q= values make new keys
                try:
                    entries.popitem(last=False)
                except KeyError:  # another thread emptied it first
                    pass
        return entry

    def put(self, key, value, stamp) -> None:
        """Store `value` under `key` if `stamp` is still the current one (a response built for
        an older publication is never stored under the new one)."""
        state = self._state
        if state is None or state[0] != stamp:
            return
        entries = state[2]
        entries[key] = value
        if len(entries) > self.max_entries:
            try:
                entries.popitem(last=False)
            except KeyError:
                pass

    def invalidate(self) -> None:
        """Force the next request to re-read the stamp."""
        self._checked_at = float("-inf")

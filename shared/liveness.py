"""Who is alive: per-process liveness keys in Redis, a heartbeat, and the work each process holds.

Guarantees:
- Every worker process (and `arxiv-bot run`) runs one Heartbeat thread. Every BEAT seconds it
  writes `arxiv-bot:alive:<host>:<pid>` with a TTL of TTL seconds, whose value lists the units of
  work the process holds (a message it is running, or keeping until its countdown), and it renews
  the database leases the process holds (`hold_lease`). A process that dies stops doing both: its
  key is gone TTL seconds later, its leases stop being renewed, so lease TTLs can be short.
- `Verdict.dead(owner)` is True only when death is known: the owner's key is missing while the
  liveness record is trustworthy (Redis has been up for longer than TTL + BEAT, so every live
  process has written its key since: after a FLUSHALL or a restart nobody is declared dead until
  then), or the owner is a process of this host (same name) whose pid no longer runs. Anything
  unknown is alive: the lease's expiry then decides, never a guess.
- Lease owners are "<host>:<pid>:<anything>"; the process part names the liveness key.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

PREFIX = "arxiv-bot:alive:"
SINCE = "arxiv-bot:alive-since"   # when Redis last started holding liveness keys (set NX)
TTL = 15.0                        # seconds a liveness key outlives its last heartbeat
BEAT = 5.0                        # seconds between heartbeats
LEASE_SECONDS = 30.0              # leases renewed by the heartbeat (fetch claims, deliveries)
RECEIVED_GRACE = 20.0             # a received message counts as held this long past its due time


def process_id() -> str:
    """host:pid of the caller, at call time (a worker forks its pool after building its runtime)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_id() -> str:
    """A lease owner: host:pid:thread (several threads of `arxiv-bot run` hold leases)."""
    return f"{process_id()}:{threading.get_ident()}"


def _process_of(owner: str) -> str:
    return ":".join(owner.split(":")[:2])


def local_pid_dead(owner: str) -> bool:
    """True when `owner` names a process of this host (same host name) that no longer runs. A
    reused pid reads as alive: the lease's expiry then decides."""
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


# -- what this process holds ---------------------------------------------------------------------

class Registry:
    """Units of work held by this process (unit -> expiry, None while running) and the renewers
    of the database leases it holds. Thread-safe; emptied after fork."""

    def __init__(self):
        self.lock = threading.Lock()
        self.units: dict[str, float | None] = {}
        self.renewers: dict[int, Callable[[], None]] = {}
        self.changed = threading.Event()

    def hold(self, units, until: float | None = None) -> None:
        with self.lock:
            for u in units:
                self.units[u] = until if self.units.get(u, 0) is not None else None
        self.changed.set()

    def drop(self, units) -> None:
        with self.lock:
            for u in units:
                self.units.pop(u, None)
        self.changed.set()

    def held(self) -> list[str]:
        now = time.time()
        with self.lock:
            for u in [u for u, t in self.units.items() if t is not None and t < now]:
                del self.units[u]
            return sorted(self.units)


REGISTRY = Registry()


class hold_lease:
    """`with hold_lease(renew):` renew() (renew this process's lease; best effort) runs on every
    heartbeat until the block ends."""

    def __init__(self, renew: Callable[[], None]):
        self.renew = renew

    def __enter__(self):
        with REGISTRY.lock:
            REGISTRY.renewers[id(self)] = self.renew
        return self

    def __exit__(self, *exc):
        with REGISTRY.lock:
            REGISTRY.renewers.pop(id(self), None)


# -- the heartbeat ---------------------------------------------------------------------------------

def redis_client(url: str | None):
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


class Heartbeat(threading.Thread):
    """Writes this process's liveness key, renews its leases and, when given `idle`, calls it
    on beats where the process holds nothing (workers sweep then: shared.lifecycle)."""

    def __init__(self, redis_url: str | None, idle: Callable[[], None] | None = None):
        super().__init__(name="arxiv-bot-heartbeat", daemon=True)
        self.redis = redis_client(redis_url)
        self.idle = idle
        self.proc = process_id()
        self.stopped = threading.Event()

    def beat(self, sweep: bool = True) -> None:
        held = REGISTRY.held()
        if self.redis is not None:
            try:
                pipe = self.redis.pipeline()
                pipe.set(SINCE, time.time(), nx=True)
                pipe.set(PREFIX + self.proc, json.dumps(held), ex=int(TTL))
                pipe.execute()
            except Exception as exc:  # Redis down: leases in the database still renew
                log.debug("heartbeat: redis unavailable: %s", type(exc).__name__)
        with REGISTRY.lock:
            renewers = list(REGISTRY.renewers.values())
        for renew in renewers:
            try:
                renew()
            except Exception as exc:  # the database restarting: the lease lasts until the next beat
                log.warning("heartbeat: could not renew a lease: %s", type(exc).__name__)
        if sweep and self.idle is not None and not held and not renewers:
            try:
                self.idle()
            except Exception as exc:
                log.warning("heartbeat: sweep failed: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def run(self) -> None:
        next_beat = 0.0
        while not self.stopped.is_set():
            now = time.monotonic()
            if REGISTRY.changed.is_set() or now >= next_beat:
                # A change is published at once: a message taken off the queue is never
                # invisible to the sweep for a whole beat.
                REGISTRY.changed.clear()
                self.beat()
                if now >= next_beat:
                    next_beat = now + BEAT
            REGISTRY.changed.wait(timeout=max(0.05, next_beat - time.monotonic()))

    def stop(self) -> None:
        self.stopped.set()
        REGISTRY.changed.set()


_heartbeat: Heartbeat | None = None
_start_lock = threading.Lock()


def start(redis_url: str | None, idle: Callable[[], None] | None = None) -> Heartbeat:
    """This process's heartbeat (started once per process; again in a forked child)."""
    global _heartbeat
    with _start_lock:
        if _heartbeat is None or _heartbeat.proc != process_id() or not _heartbeat.is_alive():
            hb = Heartbeat(redis_url, idle)
            # The key exists before this process takes any work; the first sweep runs on the
            # thread (a pool child's start-up must stay short: billiard times it out).
            hb.beat(sweep=False)
            hb.start()
            _heartbeat = hb
        return _heartbeat


def stop() -> None:
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None


def after_fork() -> None:
    """In a forked child: nothing of the parent's is held here, and its thread did not survive."""
    global REGISTRY, _heartbeat
    REGISTRY = Registry()
    _heartbeat = None


# -- reading liveness ------------------------------------------------------------------------------

class Verdict:
    """One look at every liveness key (one SCAN + MGET): which processes are alive, what they
    hold, and whether an owner is known to be dead."""

    def __init__(self, redis=None):
        self.alive: dict[str, list[str]] = {}
        self.trusted = False
        if redis is None:
            return
        since = redis.get(SINCE)
        keys = list(redis.scan_iter(match=PREFIX + "*", count=1000))
        values = redis.mget(keys) if keys else []
        for key, value in zip(keys, values):
            if value is not None:
                self.alive[key.decode()[len(PREFIX):]] = json.loads(value)
        self.trusted = since is not None and time.time() - float(since) > TTL + BEAT

    def held(self) -> set[str]:
        return {u for units in self.alive.values() for u in units}

    def dead(self, owner: str | None) -> bool:
        if not owner:
            return False
        if local_pid_dead(owner):
            return True
        return self.trusted and _process_of(owner) not in self.alive


def verdict(redis_url: str | None) -> Verdict:
    """A Verdict from Redis at `redis_url`; without Redis only local pids can be known dead."""
    client = redis_client(redis_url)
    try:
        return Verdict(client)
    finally:
        if client is not None:
            client.close()

"""arXiv's terms allow at most one request every 3 s across ALL of a client's processes and
machines. A Pacer hands out send slots: `wait()` blocks until the caller may send its request
and returns the seconds it waited.

LocalPacer spaces requests within one process. RedisPacer spaces them across every process that
shares the Redis key: an atomic Lua script reserves the next slot (max(now, last + interval))
using Redis TIME, so the machines' own clocks never matter. No connection is made at import.
"""
from __future__ import annotations

import threading
import time
from typing import Protocol

DEFAULT_KEY = "arxiv-bot:arxiv:next-slot"

# KEYS[1]: the last reserved slot (seconds, Redis clock). ARGV[1]: interval in seconds.
# Returns {slot, now} as strings: Lua numbers would be truncated to integers on the way out.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '-1e18')
local slot = math.max(now, last + interval)
local ttl = math.ceil((slot - now + interval) * 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.6f', slot), 'PX', ttl)
return {string.format('%.6f', slot), string.format('%.6f', now)}
"""


class Pacer(Protocol):
    def wait(self) -> float:
        """Block until this caller may send one request; return the seconds waited."""
        ...


class LocalPacer:
    """Thread-safe spacing within this process (embedded mode, single worker)."""

    def __init__(self, interval: float):
        self.interval = float(interval)
        self._lock = threading.Lock()
        self._next = float("-inf")

    def wait(self) -> float:
        with self._lock:  # reserve under the lock, sleep outside it
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        delay = slot - now
        if delay > 0:
            time.sleep(delay)
        return max(delay, 0.0)


class RedisPacer:
    """Spacing across processes and machines through one Redis key."""

    def __init__(self, redis_client, interval: float, key: str = DEFAULT_KEY):
        self.redis = redis_client
        self.interval = float(interval)
        self.key = key
        self._script = None

    def wait(self) -> float:
        if self._script is None:
            self._script = self.redis.register_script(_RESERVE)
        slot, now = (float(v) for v in self._script(keys=[self.key], args=[repr(self.interval)]))
        delay = slot - now
        if delay > 0:
            time.sleep(delay)
        return max(delay, 0.0)


def make_pacer(redis_url: str | None, interval: float) -> Pacer:
    """RedisPacer when a Redis URL is configured (distributed mode), else LocalPacer. The Redis
    client connects lazily, on the first wait()."""
    if not redis_url:
        return LocalPacer(interval)
    import redis

    return RedisPacer(redis.Redis.from_url(redis_url), interval)

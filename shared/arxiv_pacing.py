"""arXiv's terms allow at most one request every 3 s across ALL of a client's processes and
machines. A Pacer hands out send slots: `wait()` blocks until the caller may send its request
and returns the seconds it waited.

LocalPacer spaces requests within one process. RedisPacer spaces them across every process that
shares the Redis key: an atomic Lua script reserves the next slot (max(now, last + interval))
using Redis TIME, so the machines' own clocks never matter, and a second one, run on waking,
makes sure a late wake-up never lets two requests through closer than `interval`. No connection
is made at import.
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

# Second guard, run when the caller wakes up for its slot: KEYS[1] holds the Redis time of the
# last request actually let through. Returns 0 (and records now) when `interval` has passed since
# it, else the seconds still to wait. A process that woke up late for its slot thereby pushes the
# next one back instead of letting it follow too closely.
_CONFIRM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '-1e18')
if now < last + interval then
  return string.format('%.6f', last + interval - now)
end
redis.call('SET', KEYS[1], string.format('%.6f', now), 'PX', math.ceil(interval * 1000) + 1000)
return '0'
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
    """Spacing across processes and machines through one Redis key.

    Two scripts: the first reserves a slot (FIFO order, slots `interval + margin` apart); after
    sleeping until it, the second confirms that `interval` has really passed since the last
    request let through (by any process) and records this one. A process that wakes up late for
    its slot (busy host, GC pause) thus delays the next one instead of crowding it; the margin
    keeps that rare and covers the few ms from here to the socket."""

    def __init__(self, redis_client, interval: float, key: str = DEFAULT_KEY, margin: float = 0.05):
        self.redis = redis_client
        self.interval = float(interval)
        self.margin = float(margin)
        self.key = key
        self._script = self._confirm = None

    def wait(self) -> float:
        if self._script is None:
            self._script = self.redis.register_script(_RESERVE)
            self._confirm = self.redis.register_script(_CONFIRM)
        reply = self._script(keys=[self.key], args=[repr(self.interval + self.margin)])
        slot, now = (float(v) for v in reply)
        waited = max(slot - now, 0.0)
        if waited:
            time.sleep(waited)
        while (more := float(self._confirm(keys=[self.key + ":sent"], args=[repr(self.interval)]))) > 0:
            time.sleep(more)
            waited += more
        return waited


def make_pacer(redis_url: str | None, interval: float) -> Pacer:
    """RedisPacer when a Redis URL is configured (distributed mode), else LocalPacer. The Redis
    client connects lazily, on the first wait()."""
    if not redis_url:
        return LocalPacer(interval)
    import redis

    return RedisPacer(redis.Redis.from_url(redis_url), interval)

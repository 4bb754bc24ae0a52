"""A GLOBAL limit on LLM requests per minute AND tokens per minute, shared by all summarizers.

Providers quantise per-minute limits into per-second ones and refuse bursts, so requests are
spread evenly with GCRA (generic cell rate algorithm), kept as "theoretical arrival times"
(TATs):
  requests: emission interval T = 60/rpm s, NO burst: a request is granted only when the
            request TAT has passed; granting pushes it T later. A spacing margin (3 %)
            absorbs jitter between grant and arrival at the provider: ceil(rpm/60) grants
            then span 1.03 s, so an arrival up to 30 ms late cannot put one extra request
            into a provider second, and the achieved rate stays at 1/1.03 = 0.97 of the limit
            (bench/bench_summarizer.py: 0.97 with 4 processes, no 429s; 5 % gave 0.954).
  tokens:   a request of n tokens costs n * 60/tpm s; granted while the token schedule is
            at most `burst_seconds` ahead of now after adding the cost (or when it is idle,
            so a single request larger than the burst is not starved).
A grant reserves both atomically; a refusal reserves nothing and says how long to wait.
RedisRateLimiter does this in one Lua script with Redis' own clock (TIME), so all processes
and hosts share one schedule; LocalRateLimiter is the same algorithm in-process (embedded mode).
"""
from __future__ import annotations

import threading
import time

from shared.errors import TransientError

SPACING_MARGIN = 0.03
DEFAULT_BURST_SECONDS = 5.0
_MIN_WAIT = 0.001


def gcra(now: float, tat_r: float, tat_t: float, interval: float, cost: float,
         burst: float) -> tuple[float, float, float]:
    """(wait, new_tat_r, new_tat_t). wait == 0: granted and the TATs are the new ones;
    wait > 0: refused, TATs unchanged. The Lua script below mirrors this function."""
    wait_r = tat_r - now
    start_t = max(tat_t, now)
    wait_t = 0.0 if tat_t <= now else start_t + cost - now - burst
    wait = max(wait_r, wait_t, 0.0)
    if wait > 0:
        return max(wait, _MIN_WAIT), tat_r, tat_t
    return 0.0, max(tat_r, now) + interval, start_t + cost


_LUA_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat_r = tonumber(redis.call('GET', KEYS[1])) or 0
local tat_t = tonumber(redis.call('GET', KEYS[2])) or 0
local wait_r = tat_r - now
local start_t = math.max(tat_t, now)
local wait_t = 0
if tat_t > now then wait_t = start_t + cost - now - burst end
local wait = math.max(wait_r, wait_t, 0)
if wait > 0 then
  return string.format('%.6f', math.max(wait, 0.001))
end
local new_r = math.max(tat_r, now) + interval
local new_t = start_t + cost
-- keys expire a minute after their schedule has passed: an idle limiter leaves nothing behind
redis.call('SET', KEYS[1], string.format('%.6f', new_r), 'PX', math.ceil((new_r - now) * 1000) + 60000)
redis.call('SET', KEYS[2], string.format('%.6f', new_t), 'PX', math.ceil((new_t - now) * 1000) + 60000)
return '0'
"""

_LUA_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
for i = 1, 2 do
  local tat = tonumber(redis.call('GET', KEYS[i])) or 0
  if until_ > tat then
    redis.call('SET', KEYS[i], string.format('%.6f', until_), 'PX', math.ceil((until_ - now) * 1000) + 60000)
  end
end
return '0'
"""


class _Limiter:
    """Shared acquire loop; subclasses implement _try(tokens) and penalize(seconds)."""

    def __init__(self, rpm: float, tpm: float, burst_seconds: float = DEFAULT_BURST_SECONDS,
                 margin: float = SPACING_MARGIN):
        if rpm <= 0 or tpm <= 0:
            raise ValueError("rpm and tpm must be positive")
        self.interval = 60.0 / rpm * (1.0 + margin)
        self.token_cost = 60.0 / tpm
        self.burst = float(burst_seconds)

    def _try(self, tokens: int) -> float:
        raise NotImplementedError

    def acquire(self, tokens: int, max_wait: float) -> float:
        """Wait (sleeping at most `max_wait` s in total) for a slot for one request of `tokens`
        tokens. Returns 0.0 once granted (the slot is reserved: send the request now). If the
        wait needed would go past max_wait, returns the seconds still needed (> 0) WITHOUT
        reserving, so the caller can retry later (a Celery countdown) instead of blocking."""
        deadline = time.monotonic() + max(0.0, max_wait)
        while True:
            wait = self._try(max(0, int(tokens)))
            if wait <= 0:
                return 0.0
            left = deadline - time.monotonic()
            if wait > left:
                return wait
            time.sleep(wait)

    def penalize(self, seconds: float) -> None:
        raise NotImplementedError


class LocalRateLimiter(_Limiter):
    """The limiter for one process (embedded mode); thread-safe."""

    def __init__(self, rpm: float, tpm: float, **kw):
        super().__init__(rpm, tpm, **kw)
        self._lock = threading.Lock()
        self._tat_r = 0.0
        self._tat_t = 0.0

    def _try(self, tokens: int) -> float:
        with self._lock:
            wait, self._tat_r, self._tat_t = gcra(time.monotonic(), self._tat_r, self._tat_t,
                                                  self.interval, tokens * self.token_cost, self.burst)
            return wait

    def penalize(self, seconds: float) -> None:
        """After a 429 with Retry-After: no request is granted for `seconds` from now."""
        with self._lock:
            until = time.monotonic() + max(0.0, seconds)
            self._tat_r = max(self._tat_r, until)
            self._tat_t = max(self._tat_t, until)


class RedisRateLimiter(_Limiter):
    """The limiter shared by every process using the same Redis and key_prefix."""

    def __init__(self, redis_client, rpm: float, tpm: float, key_prefix: str = "arxiv-bot:llm",
                 **kw):
        super().__init__(rpm, tpm, **kw)
        # One hash tag so both keys live in one slot (a script may only touch one slot).
        self._keys = [f"{{{key_prefix}}}:requests", f"{{{key_prefix}}}:tokens"]
        # register_script only computes the SHA; the script is sent on first use.
        self._acquire = redis_client.register_script(_LUA_ACQUIRE)
        self._penalize = redis_client.register_script(_LUA_PENALIZE)

    def _try(self, tokens: int) -> float:
        import redis

        try:
            out = self._acquire(keys=self._keys,
                                args=[repr(self.interval), repr(tokens * self.token_cost), repr(self.burst)])
        except redis.RedisError as exc:
            raise TransientError(f"rate limiter unavailable (Redis): {type(exc).__name__}") from None
        return float(out)

    def penalize(self, seconds: float) -> None:
        """After a 429 with Retry-After: every replica pauses for `seconds` from now."""
        import redis

        try:
            self._penalize(keys=self._keys, args=[repr(max(0.0, float(seconds)))])
        except redis.RedisError as exc:
            raise TransientError(f"rate limiter unavailable (Redis): {type(exc).__name__}") from None


def make_limiter(redis_url: str | None, rpm: float, tpm: float, **kw) -> _Limiter:
    """RedisRateLimiter on `redis_url` (connects lazily, on the first acquire), or a
    LocalRateLimiter when redis_url is None (embedded mode)."""
    if not redis_url:
        return LocalRateLimiter(rpm, tpm, **kw)
    import redis

    return RedisRateLimiter(redis.Redis.from_url(redis_url), rpm, tpm, **kw)

"""A per-client request limit for the web service's write routes (feedback), in memory.

GCRA (a token bucket without a timer): each client address may make `per_minute` requests a
minute on average, and up to `burst` at once after a quiet spell (default: a minute's worth, at
least 5: a reader going through a digest clicks several buttons quickly). Per process: with WEB_WORKERS processes a client gets at most that many times the rate,
which is enough to stop a script hammering the endpoint. Behind a reverse proxy every request
comes from the proxy's address unless the proxy is trusted (see docs/DEPLOY.md). The table is
pruned as it grows, so spoofed or many addresses cannot exhaust memory.
"""
from __future__ import annotations

import math
import threading
import time

MAX_CLIENTS = 100_000


class ClientLimiter:
    def __init__(self, per_minute: float, burst: int | None = None, clock=time.monotonic):
        self.interval = 60.0 / per_minute
        self.burst = burst if burst is not None else max(5, int(per_minute))
        self.clock = clock
        self._tat: dict[str, float] = {}  # theoretical arrival time per client
        self._lock = threading.Lock()

    def take(self, client: str) -> int:
        """0 when the request may go ahead (and counts), else the whole seconds to wait."""
        now = self.clock()
        window = self.interval * self.burst
        with self._lock:
            tat = max(self._tat.get(client, now), now)
            if tat - now + self.interval > window:
                return max(1, math.ceil(tat - now + self.interval - window))
            self._tat[client] = tat + self.interval
            if len(self._tat) > MAX_CLIENTS:
                self._tat = {k: v for k, v in self._tat.items() if v > now}
            return 0

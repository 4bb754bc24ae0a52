"""Per-process runtime: config, settings and the lazily created resources every handler needs.

A handler receives `rt` and takes what it uses: `rt.session()` (one transaction), `rt.dispatch()`
(next stage, after commit), `rt.memo()` (per-process clients, limiters, compiled matchers).
Nothing connects until first use. Whoever builds the runtime gives it its dispatcher: embedded
mode a LocalDispatcher, `worker`/`trigger` a CeleryDispatcher; the web service none.
"""
from __future__ import annotations

import logging
import threading
import time
from functools import cached_property
from typing import Any

from .config import Config
from .settings import Settings

log = logging.getLogger(__name__)
READERS_TTL = 1.0  # seconds between looks at PROFILES_DIR (the web asks on every request)


class Runtime:
    def __init__(self, config: Config, settings: Settings, dispatcher=None, engine=None):
        self.config = config
        self.settings = settings
        self.dispatcher = dispatcher  # CeleryDispatcher or LocalDispatcher (shared.dispatch)
        if engine is not None:
            self.__dict__["engine"] = engine
        self.cache: dict[str, Any] = {}  # per-process memo (compiled matcher, clients, limiters)
        self._memo_lock = threading.RLock()

    @cached_property
    def engine(self):
        from .db import make_engine

        return make_engine(self.settings.database_url)

    @cached_property
    def Session(self):
        from .db import session_factory

        return session_factory(self.engine)

    def session(self):
        """`with rt.session() as s:` runs one transaction (commit on success, rollback on error)."""
        return self.Session.begin()

    def dispatch(self, task: str, countdown: float | None = None, **kwargs) -> None:
        self.dispatcher.send(task, kwargs, countdown=countdown)

    def send_all(self, work) -> None:
        """Send (task, kwargs) messages, e.g. what a pass transition returned (after commit)."""
        for task, kwargs in work:
            self.dispatcher.send(task, kwargs)

    def memo(self, key: str, factory):
        """Build a per-process object once (e.g. an HTTP client, a compiled matcher). Thread-safe:
        embedded mode summarizes in threads, and two limiters would each allow the full rate."""
        try:
            return self.cache[key]
        except KeyError:
            pass
        with self._memo_lock:
            if key not in self.cache:
                self.cache[key] = factory()
            return self.cache[key]

    def readers(self):
        """The deployment's profiles (shared.profiles.Readers). PROFILES_DIR is re-read when a
        file in it changes, so a reader added or edited there needs no restart."""
        from .profiles import load

        folder = self.settings.profiles_dir
        with self._memo_lock:
            cached = self.cache.get("readers")
            now = time.monotonic()
            if cached is not None and (folder is None or now - cached[2] < READERS_TTL):
                return cached[1]
            stamp = None
            if folder is not None and folder.is_dir():
                stamp = tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.glob("*.json")))
            if cached is None or cached[0] != stamp:
                cached = (stamp, load(self.config, folder), now)
            self.cache["readers"] = (cached[0], cached[1], now)
            return cached[1]

    def reset_after_fork(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose(close=False)
        self._memo_lock = threading.RLock()
        self.cache.clear()  # HTTP clients and sockets are not shared across processes


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The process's runtime, from config.json and the environment (validated) on first use."""
    global _runtime
    if _runtime is None:
        from .settings import load

        config, settings = load()
        _runtime = Runtime(config, settings)
    return _runtime


def set_runtime(rt: Runtime | None) -> None:
    global _runtime
    _runtime = rt


def reset_after_fork() -> None:
    if _runtime is not None:
        _runtime.reset_after_fork()

"""Per-process runtime: config, settings and the lazily created resources every handler needs.

A handler receives `rt` and takes what it uses: `rt.session()` (one transaction), `rt.dispatch()`
(next stage, after commit), `rt.redis` (cross-process limits, None in pure embedded mode). Nothing
connects until first use. Workers get theirs from `get_runtime()` (built from the environment);
embedded mode builds one with a LocalDispatcher.
"""
from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

from .config import Config
from .settings import Settings

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, config: Config, settings: Settings, dispatcher=None, engine=None):
        self.config = config
        self.settings = settings
        self._dispatcher = dispatcher
        if engine is not None:
            self.__dict__["engine"] = engine
        self.cache: dict[str, Any] = {}  # per-process memo (compiled matcher, clients, limiters)

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

    @cached_property
    def redis(self):
        if not self.settings.redis_url:
            return None
        import redis

        return redis.Redis.from_url(self.settings.redis_url, socket_timeout=10, socket_connect_timeout=5,
                                    health_check_interval=30)

    @property
    def dispatcher(self):
        if self._dispatcher is None:
            from .celery_app import get_app
            from .dispatch import CeleryDispatcher

            self._dispatcher = CeleryDispatcher(get_app())
        return self._dispatcher

    def dispatch(self, task: str, countdown: float | None = None, **kwargs) -> None:
        self.dispatcher.send(task, kwargs, countdown=countdown)

    def memo(self, key: str, factory):
        """Build a per-process object once (e.g. an HTTP client, a compiled matcher)."""
        if key not in self.cache:
            self.cache[key] = factory()
        return self.cache[key]

    def reset_after_fork(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose(close=False)
        self.cache.clear()  # HTTP clients and sockets are not shared across processes
        self.__dict__.pop("redis", None)


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

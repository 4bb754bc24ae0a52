"""What one web app holds: the runtime (config, settings, the engine and sessions, shared with
every other part of arxiv-bot) and the response cache built from the database.

Nothing connects at construction: the engine is made on the first request that needs it.
"""
from __future__ import annotations

from shared.runtime import Runtime

from .cache import DigestCache
from .snapshot import Snapshot, load_snapshot


class Backend:
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.cache = DigestCache(self._read_stamp, self._load)

    @property
    def config(self):
        return self.rt.config

    @property
    def settings(self):
        return self.rt.settings

    def session(self):
        """A plain session for reads (`with backend.session() as s:`)."""
        return self.rt.Session()

    def _read_stamp(self):
        from shared.digest import publication_stamp

        with self.session() as s:
            return publication_stamp(s)

    def _load(self, _stamp) -> Snapshot:
        with self.session() as s:
            return load_snapshot(s, self.config, self.settings)

"""What one web app holds: the runtime (config, settings, readers, the engine and sessions,
shared with every other part of arxiv-bot) and one response cache per profile.

Nothing connects at construction: the engine is made on the first request that needs it. Each
profile's cache re-reads only its own publication stamp (and, for a private profile, its key
generation: a rotated key empties the cache at once; and the UTC day, for the page's feedback
tokens), so 10,000 readers publishing one after the other never empty each other's caches. Caches are kept for the most recently asked profiles.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

from shared.runtime import Runtime

from .cache import DigestCache
from .snapshot import Snapshot, load_snapshot

MAX_PROFILE_CACHES = 256


class Backend:
    def __init__(self, rt: Runtime):
        self.rt = rt
        self._caches: OrderedDict[tuple[str, str], DigestCache] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def config(self):
        return self.rt.config

    @property
    def settings(self):
        return self.rt.settings

    def readers(self):
        return self.rt.readers()

    def session(self):
        """A plain session for reads (`with backend.session() as s:`)."""
        return self.rt.Session()

    def cache(self, slug: str, home: str) -> DigestCache:
        """The cache of the profile's digest as served under `home` ("/" for the default profile at
        the root, "/p/<slug>/" below it: the self links differ, as in the published files)."""
        key = (slug, home)
        with self._lock:
            cache = self._caches.get(key)
            if cache is None:
                cache = DigestCache(lambda: self._read_stamp(slug), lambda _stamp: self._load(slug, home))
                self._caches[key] = cache
                while len(self._caches) > MAX_PROFILE_CACHES:
                    self._caches.popitem(last=False)
            else:
                self._caches.move_to_end(key)
            return cache

    def peek(self, slug: str, home: str) -> DigestCache | None:
        """The cache if it exists (the fast path never creates one)."""
        return self._caches.get((slug, home))

    def cache_for_path(self, path: str) -> DigestCache | None:
        """For the fast path: the existing cache that serves `path`, if any."""
        if path.startswith("/p/"):
            slug = path[3:].split("/", 1)[0]
            return self.peek(slug, f"/p/{slug}/")
        slug = self.readers().default_slug
        return self.peek(slug, "/") if slug else None

    def invalidate(self) -> None:
        for cache in list(self._caches.values()):
            cache.invalidate()

    def key_of(self, slug: str) -> str:
        """The private profile's current key (derived; see shared.profile_keys)."""
        from shared import profile_keys

        with self.rt.session() as s:
            return profile_keys.profile_key(s, self.settings, slug)

    def _read_stamp(self, slug: str):
        from shared import profile_keys
        from shared.digest import publication_stamp

        profile = self.readers().get(slug)
        with self.session() as s:
            stamp = publication_stamp(s, slug)
            if profile is not None and profile.private:
                stamp += (profile_keys.generation(s, slug),)
        # The UTC day: the page's feedback tokens are restamped daily (web/snapshot.py page_entry),
        # so a digest older than feedback.link_days still has working buttons.
        return (stamp + (int(time.time()) // 86400,), profile)

    def secret(self) -> bytes:
        """SECRET_KEY (shared.profile_keys.secret_key), made and committed on first use."""
        from shared import profile_keys

        def make():
            with self.rt.session() as s:
                return profile_keys.secret_key(s, self.settings)
        return self.rt.memo("web.secret", make)

    def _load(self, slug: str, home: str) -> Snapshot | None:
        profile = self.readers().get(slug)
        if profile is None:
            return None
        self.secret()  # committed, so the read-only snapshot session finds it (feedback tokens)
        with self.session() as s:
            return load_snapshot(s, self.config, self.settings, profile, home)

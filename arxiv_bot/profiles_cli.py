"""`arxiv-bot profile list|url|rotate`: the deployment's readers from the command line.

`url` prints a profile's page and feed URLs (under feeds.public_url), with the key for a private
one; `rotate` makes a private profile's old key (every link handed out) stop working.
"""
from __future__ import annotations

import json

from shared.db import ensure_schema
from shared.errors import UserError
from shared.runtime import Runtime

FEEDS = ("feed.xml", "atom.xml", "feed.json", "papers.json", "README.md")


def _runtime(config, settings) -> Runtime:
    rt = Runtime(config, settings)
    return rt


def _profile(rt, slug: str):
    readers = rt.readers()
    profile = readers.get(slug)
    if profile is None:
        known = ", ".join(readers.slugs)
        raise UserError(f"no profile named {slug!r} (profiles: {known})")
    return readers, profile


def list_profiles(config, settings, as_json: bool = False) -> int:
    rt = _runtime(config, settings)
    readers = rt.readers()
    rows = [{"slug": p.slug, "private": p.private, "default": p.slug == readers.default_slug,
             "categories": list(p.categories), "keywords": len(p.keywords), "language": p.language,
             "channels": [c.type for c in p.deliver], "source": p.source} for p in readers.profiles]
    if as_json:
        print(json.dumps({"profiles": rows, "warnings": list(readers.warnings)}, indent=2))
        return 0
    for w in readers.warnings:
        print(f"warning: {w}")
    for r in rows:
        flags = ", ".join(f for f, on in (("default", r["default"]), ("private", r["private"])) if on)
        channels = f"; delivers by {', '.join(r['channels'])}" if r["channels"] else ""
        print(f"{r['slug']}{f' ({flags})' if flags else ''}: {', '.join(r['categories'])}; {r['keywords']} keywords; "
              f"summaries in {r['language']}{channels}")
    return 0


def profile_urls(rt, slug: str) -> dict[str, str]:
    """{"page": ..., "feed.xml": ..., ...} for the profile; private ones carry ?key=."""
    from urllib.parse import quote

    from shared import profile_keys

    readers, profile = _profile(rt, slug)
    base = (rt.config.feeds.public_url or "http://127.0.0.1:8000").rstrip("/")
    home = base + readers.page_path(slug)
    query = ""
    if profile.private:
        ensure_schema(rt.engine)
        with rt.session() as s:
            query = "?key=" + quote(profile_keys.profile_key(s, rt.settings, slug))
    return {"page": home + query, **{name: f"{home}{name}{query}" for name in FEEDS}}


def show_urls(config, settings, slug: str) -> int:
    rt = _runtime(config, settings)
    for name, url in profile_urls(rt, slug).items():
        print(f"{name:<12} {url}")
    return 0


def rotate(config, settings, slug: str) -> int:
    from shared import profile_keys

    rt = _runtime(config, settings)
    _readers, profile = _profile(rt, slug)
    if not profile.private:
        raise UserError(f"profile {slug!r} is public: it has no key to rotate")
    ensure_schema(rt.engine)
    with rt.session() as s:
        generation = profile_keys.rotate(s, slug)
    print(f"profile {slug}: key rotated (generation {generation}); the old links no longer work")
    return show_urls(config, settings, slug)

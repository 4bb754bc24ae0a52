"""What every channel delivers: one profile's digest of one pass, loaded once per process.

`load(rt, session, pass_id, slug)` returns a `Digest`: the papers as papers.json has them (the
json webhook posts those), the same papers ready for display (TeX as text, shared.render.paper)
each with its links, the profile's page URL, and README.md as published (git). Ten thousand
recipients of one profile share one Digest (a small per-process cache).

Links in every channel: the paper (abs), its PDF, the profile's page, and feedback links when
`feedback_url` gives them.
"""
from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import quote

from shared import digest, profile_keys
from shared.models import Pass, Publication
from shared.render.paper import readable
from shared.render.sanitize import safe_url

CACHE_SIZE = 16
RATINGS = ("up", "down")


def feedback_urls(rt, session, profile: str):
    """(paper_id, rating) -> the GET link a reader follows to rate a paper for `profile` ("up":
    more like this, "down": less like this): <feeds.public_url>/feedback?t=<signed token>
    (shared.feedback_links), answered by a confirmation page. Without a public URL every link is
    None: then no channel shows one."""
    if not rt.config.feeds.public_url:
        return lambda paper_id, rating: None
    from shared.feedback_links import links_for

    links = links_for(session, rt.settings, rt.config, profile)  # one secret lookup per digest
    return links.url


@dataclass(frozen=True)
class Digest:
    pass_id: int
    profile: str
    day: dt.date
    papers: list[dict]                 # papers.json items, untouched
    shown: list[dict]                  # readable copies with "links": {"abs", "pdf", "up"?, "down"?}
    page_url: str | None               # the profile's page (with ?key= for a private profile)
    readme: str = field(default="", repr=False)

    @property
    def count(self) -> int:
        return len(self.papers)

    def title(self) -> str:
        return f"arXiv digest {self.day.isoformat()} · {self.profile} · {_papers(self.count)}"


def _papers(n: int) -> str:
    return f"{n} paper" + ("" if n == 1 else "s")


def page_url(rt, session, slug: str) -> str | None:
    """feeds.public_url + the profile's page, with the key of a private profile (its reader may
    see it); None when public_url is not set (no absolute link can be made)."""
    base = rt.config.feeds.public_url
    readers = rt.readers()
    profile = readers.get(slug)
    if not base or profile is None:
        return None
    url = base.rstrip("/") + readers.page_path(slug)
    if profile.private:
        url += "?key=" + quote(profile_keys.profile_key(session, rt.settings, slug))
    return url


def _build(rt, session, pass_id: int, slug: str) -> Digest:
    papers = digest.load_pass_papers(session, pass_id, slug)
    feedback_url = feedback_urls(rt, session, slug)
    shown = []
    for p in papers:
        item = readable(p)
        links = {"abs": safe_url(p.get("abs_url")), "pdf": safe_url(p.get("pdf_url"))}
        for rating in RATINGS:
            url = safe_url(feedback_url(p["id"], rating))
            if url:
                links[rating] = url
        item["links"] = links
        shown.append(item)
    p = session.get(Pass, pass_id)
    pub = session.get(Publication, (slug, p.day))  # README.md as published for the day (the latest pass's)
    return Digest(pass_id=pass_id, profile=slug, day=p.day, papers=papers, shown=shown,
                  page_url=page_url(rt, session, slug), readme=pub.readme_md if pub else "")


_lock = threading.Lock()


def load(rt, session, pass_id: int, slug: str) -> Digest:
    """The profile's digest of the pass (cached per process: the last CACHE_SIZE digests)."""
    cache = rt.memo("deliverer.digests", OrderedDict)
    key = (pass_id, slug)
    with _lock:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    built = _build(rt, session, pass_id, slug)
    with _lock:
        cache[key] = built
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
    return built

"""What the web service serves for one publication stamp, and the response bodies built from it.

`load_snapshot(session, config, settings)` reads, in a handful of queries, everything the routes
need for the latest publication: the latest digest's papers, the feeds' rolling window, the
published days and the known categories. The builders turn a snapshot plus normalised filters
into cache Entries (bytes + validators) and do no database access: an earlier day's papers are
loaded by the /day view (web/views.py) once per stamp and day, then cached.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass

from shared import digest
from shared.feedback_links import links_for
from shared.render.feeds import feed_meta, render_atom, render_json_feed, render_papers_json, render_rss
from shared.render.html import render_page
from shared.render.links import Links
from shared.render.markdown import render_readme

from .cache import Entry

CONTENT_TYPES = {
    "feed.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
    "papers.json": "application/json; charset=utf-8",
    "README.md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "feeds.opml": "text/x-opml; charset=utf-8",
}


@dataclass(frozen=True)
class Snapshot:
    day: dt.date | None
    published_at: dt.datetime | None
    readme_md: str
    latest: list          # paper dicts of the latest digest, by rank
    window: list          # paper dicts of the feeds' window, newest digest first
    days: list            # published days, newest first
    known: list           # the profile's categories, then those present in the data
    config: object
    settings: object
    profile: object       # shared.profiles.Profile
    home: str = "/"       # the profile's page: "/" (the default profile at the root) or "/p/<slug>/"
    feedback: object = None  # shared.feedback_links.FeedbackLinks, stamped with the publication time

    @property
    def last_modified(self) -> float | None:
        return self.published_at.timestamp() if self.published_at else None

    @property
    def prefix(self) -> str:
        return self.home.rstrip("/")

    def cache_control(self, seconds: int) -> str:
        # A private digest must never sit in a shared cache (a proxy would serve it without the key).
        return f"{'private' if self.profile.private else 'public'}, max-age={seconds}"

    def context(self, papers: list, day=None, generated_at=None) -> dict:
        cfg, prof = self.config, self.profile
        return digest.build_context(
            papers, day=day or self.day, generated_at=generated_at or self.published_at,
            categories=prof.categories, keywords=prof.keyword_terms(), schedule=cfg.schedule.describe(),
            model=getattr(self.settings, "llm_model", cfg.ai_summary.model))


def load_snapshot(session, config, settings, profile, home: str = "/") -> Snapshot:
    slug = profile.slug
    pub = digest.latest_publication(session, slug)
    latest = (digest.load_day(session, pub.day, slug) or []) if pub is not None else []
    window = digest.load_window(session, config.feeds.window_days, config.feeds.max_items, slug)
    known = digest.known_categories(profile.categories, latest + window)
    # Feed items' tokens are stamped with the publication time, like the publisher's files: every
    # process builds the same bytes (ETags agree). The page's are restamped daily (page_entry).
    fb = links_for(session, settings, config, profile, pub.published_at) if pub is not None else None
    return Snapshot(day=pub.day if pub else None, published_at=pub.published_at if pub else None,
                    readme_md=pub.readme_md if pub else "", latest=latest, window=window,
                    days=digest.published_days(session, slug), known=known, config=config, settings=settings,
                    profile=profile, home=home, feedback=fb)


def _apply(papers: list, filters: dict) -> list:
    return digest.filter_papers(papers, **filters)


def feed_entry(route: str, snap: Snapshot, filters: dict, base_url: str | None = None) -> Entry:
    """feed.xml / atom.xml / feed.json over the window; papers.json over the latest digest.
    `base_url` is the site's URL for the self links when feeds.public_url is not set."""
    if route == "papers.json":
        body = render_papers_json(_apply(snap.latest, filters))
    else:
        papers = _apply(snap.window, filters)
        render = {"feed.xml": render_rss, "atom.xml": render_atom, "feed.json": render_json_feed}[route]
        body = render(papers, feed_meta(snap.config, route, filters, snap.published_at, base_url=base_url,
                                        profile=snap.profile, prefix=snap.prefix, feedback=snap.feedback))
    return Entry.make(body, CONTENT_TYPES[route], snap.last_modified, **{"Cache-Control": snap.cache_control(300)})


def readme_entry(snap: Snapshot, filters: dict) -> Entry:
    if snap.readme_md and not any(v is not None for v in filters.values()):
        body = snap.readme_md  # exactly what the publisher wrote for this day
    else:
        body = render_readme(snap.context(_apply(snap.latest, filters)))
    return Entry.make(body, CONTENT_TYPES["README.md"], snap.last_modified,
                      **{"Cache-Control": snap.cache_control(300)})


def page_entry(snap: Snapshot, filters: dict, papers: list | None = None, day=None,
               action: str | None = None, view: dict | None = None, key: str | None = None) -> Entry:
    """The HTML page of the latest digest (or of `day` with its `papers`), at path `action`,
    sorted and shown as `view` says (web.params.parse_view). A private profile's `key` rides on
    its feed links, so a reader can subscribe from the page."""
    source = snap.latest if papers is None else papers
    shown = _apply(source, filters)
    view = view or {}
    # The page's forms stay usable however old the digest is: their tokens are stamped with the
    # day the page is built (UTC midnight, so every process builds the same bytes that day).
    fb = dataclasses.replace(snap.feedback, issued_at=int(time.time()) // 86400 * 86400) if snap.feedback else None
    html = render_page(snap.context(shown, day=day), filters, snap.days, total=len(source),
                       known_categories=snap.known,
                       links=Links.web(action or snap.home, snap.home, key, feedback=fb),
                       sort=view.get("sort", "score"), view=view.get("view", "full"))
    return Entry.make(html, CONTENT_TYPES["html"], snap.last_modified, **{"Cache-Control": snap.cache_control(60)})


def opml_entry(snap: Snapshot, base_url: str) -> Entry:
    """feeds.opml: the whole feed and one feed per known category."""
    from shared.render.opml import render_opml

    title = "arXiv digest: " + ", ".join(snap.profile.categories)
    body = render_opml(base_url.rstrip("/") + snap.prefix, snap.known, title, snap.published_at)
    return Entry.make(body, CONTENT_TYPES["feeds.opml"], snap.last_modified,
                      **{"Cache-Control": snap.cache_control(300)})

"""The routes (docs/DESIGN.md "HTTP contract"), as one blueprint.

/ (HTML of the latest digest), /day/YYYY-MM-DD, /feed.xml, /atom.xml, /feed.json, /papers.json,
/README.md, /feeds.opml, /static/style.css, /healthz. Feeds, JSON, the README and the page take
category, min_score, q, limit; the page also sort and view. Self links in the feeds and the OPML
use feeds.public_url, or the URL the request came to. Responses come from web.cache (built once
per publication), carry a strong ETag and Last-Modified, and answer If-None-Match /
If-Modified-Since with 304.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, current_app, request
from werkzeug.http import parse_date

from . import health
from .cache import Entry
from .errors import HTML_CSP, WebError
from .fastpath import wsgi_headers
from .params import BadParam, filters_key, parse_filters, parse_view, request_base_url
from .snapshot import CONTENT_TYPES, Snapshot, feed_entry, opml_entry, page_entry, readme_entry

bp = Blueprint("digest", __name__)
FEED_ROUTES = ("feed.xml", "atom.xml", "feed.json", "papers.json")


def _backend():
    return current_app.extensions["arxiv_bot"]


def send(entry: Entry, extra: dict | None = None) -> Response:
    """The entry, or 304 when the client's validators match (If-None-Match wins over
    If-Modified-Since, RFC 9110 13.2.2)."""
    inm = request.headers.get("If-None-Match")
    not_modified = False
    if inm is not None:
        not_modified = inm.strip() == "*" or entry.etag in (t.strip().removeprefix("W/") for t in inm.split(","))
    elif entry.last_modified is not None:
        ims = request.headers.get("If-Modified-Since")
        since = parse_date(ims) if ims else None
        not_modified = since is not None and int(entry.last_modified) <= since.timestamp()
    headers = dict(entry.headers, **(extra or {}))
    headers["X-Content-Type-Options"] = "nosniff"
    if not_modified:
        return Response(status=304, headers=headers)
    return Response(entry.body, headers=headers, content_type=entry.content_type)


def _filters_for(snap: Snapshot) -> dict:
    try:
        filters = parse_filters(request.args)
    except BadParam as exc:
        raise WebError(400, str(exc)) from None
    if filters["category"] and filters["category"] not in snap.known:
        raise WebError(404, f"unknown category '{filters['category']}'; known: {', '.join(snap.known)}")
    return filters


def _cached(route, build, by_host: bool = False) -> Response:
    cache = _backend().cache
    stamp, snap, _entries = cache.current()
    filters = _filters_for(snap)
    entry = cache.get((route, filters_key(filters)), lambda s: build(s, filters))
    extra = {"Content-Security-Policy": HTML_CSP} if entry.content_type == CONTENT_TYPES["html"] else None
    # Let the fast path answer the next GET of this exact URL without Flask (web/fastpath.py).
    # Its key has no Host, so a response whose links come from the Host is not put there.
    if not by_host:
        raw = ("raw", request.path, request.environ.get("QUERY_STRING", ""))
        cache.put(raw, (entry, *wsgi_headers(entry, extra)), stamp=stamp)
    return send(entry, extra)


def _site_url() -> str | None:
    """The request's base URL for self links, or None when feeds.public_url is set (it wins)."""
    if _backend().config.feeds.public_url:
        return None
    try:
        return request_base_url(request.scheme, request.host)
    except BadParam as exc:
        raise WebError(400, str(exc)) from None


def _page_view() -> dict:
    """The page's own parameters: sort and view (server-side, no JavaScript)."""
    try:
        return parse_view(request.args)
    except BadParam as exc:
        raise WebError(400, str(exc)) from None


@bp.get("/")
@bp.get("/index.html")
def index():
    view = _page_view()
    return _cached(("/", view["sort"], view["view"]), lambda snap, f: page_entry(snap, f, view=view))


@bp.get("/day/<day>")
def day_page(day: str):
    try:
        when = dt.date.fromisoformat(day) if len(day) == 10 else None
    except ValueError:
        when = None
    if when is None:
        raise WebError(400, "day: expected a date as YYYY-MM-DD")
    view = _page_view()

    def build(snap: Snapshot, filters: dict) -> Entry:
        from shared.digest import load_day

        with _backend().session() as s:
            papers = load_day(s, when)
        if papers is None:
            raise WebError(404, f"no digest was published for {when.isoformat()}")
        return page_entry(snap, filters, papers=papers, day=when, action=f"/day/{when.isoformat()}", view=view)

    return _cached((f"/day/{when.isoformat()}", view["sort"], view["view"]), build)


def _feed_view(route: str):
    def serve_feed():
        base = _site_url() if route != "papers.json" else None  # papers.json has no self link
        return _cached((route, base), lambda snap, f: feed_entry(route, snap, f, base), by_host=base is not None)

    return serve_feed


for _route in FEED_ROUTES:
    bp.add_url_rule(f"/{_route}", f"feed_{_route.replace('.', '_')}", _feed_view(_route), methods=["GET"])


@bp.get("/README.md")
def readme():
    return _cached("README.md", readme_entry)


@bp.get("/feeds.opml")
def opml():
    base = _site_url()
    return _cached(("feeds.opml", base),
                   lambda snap, f: opml_entry(snap, base or _backend().config.feeds.public_url), by_host=base is not None)


_style: list[Entry] = []


@bp.get("/static/style.css")
def stylesheet():
    if not _style:
        from shared.render.html import stylesheet as css  # shared/render/static/style.css

        _style.append(Entry.make(css(), "text/css; charset=utf-8", None, **{"Cache-Control": "public, max-age=86400"}))
    return send(_style[0])


@bp.get("/healthz")
def healthz():
    backend = _backend()
    body, status = health.check(lambda: backend.rt.engine, backend.settings)
    return Response(body, status=status, content_type="application/json",
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

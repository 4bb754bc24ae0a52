"""The digest routes (docs/DESIGN.md "HTTP contract" and "Readers"), as one blueprint.

Every route exists at the root, for the default profile, and below /p/<slug>/ for each profile:
the page (/ and /index.html), /day/YYYY-MM-DD, /feed.xml, /atom.xml, /feed.json, /papers.json,
/README.md and /feeds.opml. Feeds, JSON, the README and the page take category, min_score, q,
limit; the page also sort and view. Self links in the feeds and the OPML use feeds.public_url,
or the URL the request came to. A private profile's URLs need ?key=<token> (or the cookie a
keyed visit sets, so the links on its page work); a missing or wrong key answers exactly like an
unknown profile (404). Responses come from the profile's cache (web.cache, built once per
publication), carry a strong ETag and Last-Modified, and answer If-None-Match /
If-Modified-Since with 304.
"""
from __future__ import annotations


from flask import Blueprint, Response, current_app, request
from werkzeug.http import parse_date

from shared import profile_keys

from . import health
from .cache import Entry
from .errors import HTML_CSP, WebError
from .encoding import etag_matches, negotiate
from .fastpath import NOT_MODIFIED_DROP, FastEntry
from .params import BadParam, filters_key, parse_day, parse_filters, parse_view, request_base_url
from .snapshot import CONTENT_TYPES, Snapshot, feed_entry, opml_entry, page_entry, readme_entry

bp = Blueprint("digest", __name__)
FEED_ROUTES = ("feed.xml", "atom.xml", "feed.json", "papers.json")


KEY_COOKIE = "arxiv_bot_key"


def _backend():
    return current_app.extensions["arxiv_bot"]


def send(entry: Entry, extra: dict | None = None) -> Response:
    """The entry in the coding the client accepts (web/encoding.py), or 304 when the client's
    validators match that representation (If-None-Match wins over If-Modified-Since, RFC 9110
    13.2.2)."""
    entry = entry.encoded(negotiate(request.headers.get("Accept-Encoding")))
    inm = request.headers.get("If-None-Match")
    not_modified = False
    if inm is not None:
        not_modified = etag_matches(inm, entry.etag)
    elif entry.last_modified is not None:
        ims = request.headers.get("If-Modified-Since")
        since = parse_date(ims) if ims else None
        not_modified = since is not None and int(entry.last_modified) <= since.timestamp()
    headers = dict(entry.headers, **(extra or {}))
    headers["X-Content-Type-Options"] = "nosniff"
    if not_modified:
        return Response(status=304, headers={k: v for k, v in headers.items() if k not in NOT_MODIFIED_DROP})
    return Response(entry.body, headers=headers, content_type=entry.content_type)


def _filters_for(snap: Snapshot) -> dict:
    try:
        filters = parse_filters(request.args)
    except BadParam as exc:
        raise WebError(400, str(exc)) from None
    if filters["category"] and filters["category"] not in snap.known:
        raise WebError(404, f"unknown category '{filters['category']}'; known: {', '.join(snap.known)}")
    return filters


def _unknown(slug: str) -> WebError:
    # The same answer for an unknown profile and a private one without its key: nothing to learn.
    return WebError(404, f"no profile named '{slug}'; see /profiles")


def _profile(slug: str | None):
    """(profile, home, key) of the request; raises the 404 of an unknown profile."""
    readers = _backend().readers()
    if slug is None:
        slug = readers.default_slug
        if slug is None:
            raise WebError(404, "no public digest here; see /profiles")
        home = "/"
    else:
        home = f"/p/{slug}/"
    profile = readers.get(slug)
    if profile is None:
        raise _unknown(slug)
    key = None
    if profile.private:
        key = request.args.get("key") or request.cookies.get(KEY_COOKIE)
        if not profile_keys.check(key, _backend().key_of(slug)):
            raise _unknown(slug)
    return profile, home, key


def _cached(slug: str | None, route, build, by_host: bool = False) -> Response:
    profile, home, key = _profile(slug)
    cache = _backend().cache(profile.slug, home)
    stamp, snap, _entries = cache.current()
    if snap is None:
        raise _unknown(profile.slug)
    filters = _filters_for(snap)
    entry = cache.get((route, filters_key(filters)), lambda s: build(s, filters, key))
    extra = {"Content-Security-Policy": HTML_CSP} if entry.content_type == CONTENT_TYPES["html"] else None
    # Let the fast path answer the next GET of this exact URL without Flask (web/fastpath.py). A
    # response whose links come from the request's Host is keyed by scheme and Host (as sent)
    # too. Never a private profile's: the fast path checks no keys.
    raw = ("raw", request.path, request.environ.get("QUERY_STRING", ""))
    host = request.environ.get("HTTP_HOST")
    if by_host and host:
        raw += (request.environ.get("wsgi.url_scheme"), host)
    if (not by_host or host) and not profile.private:
        cache.put(raw, FastEntry(entry, extra), stamp=stamp)
    response = send(entry, extra)
    if profile.private and request.args.get("key"):
        response.set_cookie(KEY_COOKIE, key, path=home, httponly=True, samesite="Lax", secure=request.is_secure)
    return response


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


def index(slug: str | None = None):
    view = _page_view()
    return _cached(slug, ("/", view["sort"], view["view"]),
                   lambda snap, f, key: page_entry(snap, f, view=view, key=key))


def day_page(day: str, slug: str | None = None):
    try:
        when = parse_day(day)
    except BadParam as exc:
        raise WebError(400, str(exc)) from None
    view = _page_view()

    def build(snap: Snapshot, filters: dict, key) -> Entry:
        from shared.digest import load_day

        with _backend().session() as s:
            papers = load_day(s, when, snap.profile.slug)
        if papers is None:
            raise WebError(404, f"no digest was published for {when.isoformat()}")
        return page_entry(snap, filters, papers=papers, day=when, action=f"{snap.home}day/{when.isoformat()}",
                          view=view, key=key)

    return _cached(slug, (f"/day/{when.isoformat()}", view["sort"], view["view"]), build)


def _feed_view(route: str):
    def serve_feed(slug: str | None = None):
        base = _site_url() if route != "papers.json" else None  # papers.json has no self link
        return _cached(slug, (route, base), lambda snap, f, _key: feed_entry(route, snap, f, base),
                       by_host=base is not None)

    return serve_feed


def readme(slug: str | None = None):
    return _cached(slug, "README.md", lambda snap, f, _key: readme_entry(snap, f))


def opml(slug: str | None = None):
    base = _site_url()
    return _cached(slug, ("feeds.opml", base),
                   lambda snap, f, _key: opml_entry(snap, base or _backend().config.feeds.public_url),
                   by_host=base is not None)


def _route(rule: str, endpoint: str, view) -> None:
    """The rule at the root (the default profile) and below /p/<slug>/ (every profile)."""
    bp.add_url_rule(rule, endpoint, view, methods=["GET"])
    bp.add_url_rule(f"/p/<slug>{rule}", f"profile_{endpoint}", view, methods=["GET"])


_route("/", "index", index)
_route("/index.html", "index_html", index)
_route("/day/<day>", "day", day_page)
for _name in FEED_ROUTES:
    _route(f"/{_name}", f"feed_{_name.replace('.', '_')}", _feed_view(_name))
_route("/README.md", "readme", readme)
_route("/feeds.opml", "opml", opml)


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

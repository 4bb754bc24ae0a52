"""The web service: `create_app(settings=None, engine=None, config=None) -> Flask`.

Routes (DESIGN.md "HTTP contract"): / (HTML of the latest digest), /day/YYYY-MM-DD, /feed.xml,
/atom.xml, /feed.json, /papers.json, /README.md, /static/style.css, /healthz. Feeds, JSON, the
README and the page take category, min_score, q, limit. No I/O at import or in the factory: the
engine is made on first use. Responses come from web.cache (built once per publication), carry a
strong ETag and Last-Modified, and answer If-None-Match / If-Modified-Since with 304. Errors are
one short line (JSON for .json and /healthz, plain text for the feeds and README, HTML for
pages), never a traceback.
"""
from __future__ import annotations

import datetime as dt
import logging

from flask import Flask, Response, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_date

from shared.errors import UserError

from . import health
from .cache import DigestCache, Entry
from .errors import WebError, error_response
from .fastpath import FastPath, wsgi_headers
from .params import BadParam, filters_key, parse_filters
from .snapshot import CONTENT_TYPES, Snapshot, feed_entry, load_snapshot, page_entry, readme_entry

log = logging.getLogger(__name__)

HTML_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
            "frame-ancestors 'none'")
FEED_ROUTES = ("feed.xml", "atom.xml", "feed.json", "papers.json")


class _Backend:
    """The lazily created engine/session factory and the response cache of one app."""

    def __init__(self, config, settings, engine=None):
        self.config, self.settings, self._engine, self._session = config, settings, engine, None
        self.cache = DigestCache(self._read_stamp, self._load)

    @property
    def engine(self):
        if self._engine is None:
            from shared.db import make_engine

            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def session(self):
        if self._session is None:
            from shared.db import session_factory

            self._session = session_factory(self.engine)
        return self._session()

    def _read_stamp(self):
        from shared.digest import publication_stamp

        with self.session() as s:
            return publication_stamp(s)

    def _load(self, _stamp) -> Snapshot:
        with self.session() as s:
            return load_snapshot(s, self.config, self.settings)


def _load_settings(settings, config):
    from shared import settings as settings_mod

    if settings is None:
        loaded_config, settings = settings_mod.load()
        return config or loaded_config, settings
    if config is None:
        from shared.config import load_config

        config = load_config(settings.config_path)
    return config, settings


def _send(entry: Entry, extra: dict | None = None) -> Response:
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


def create_app(settings=None, engine=None, config=None) -> Flask:
    """Build the Flask app. `settings`/`config` default to shared.settings.load(); `engine`
    defaults to shared.db.make_engine(settings.database_url), created on first use."""
    config, settings = _load_settings(settings, config)
    app = Flask(__name__)
    backend = _Backend(config, settings, engine)
    app.extensions["arxiv_bot"] = backend
    app.wsgi_app = FastPath(app.wsgi_app, backend.cache)

    def filters_for(snap: Snapshot) -> dict:
        try:
            filters = parse_filters(request.args)
        except BadParam as exc:
            raise WebError(400, str(exc)) from None
        if filters["category"] and filters["category"] not in snap.known:
            raise WebError(404, f"unknown category '{filters['category']}'; known: {', '.join(snap.known)}")
        return filters

    def cached(route: str, build) -> Response:
        _stamp, snap, _entries = backend.cache.current()
        filters = filters_for(snap)
        entry = backend.cache.get((route, filters_key(filters)), lambda s: build(s, filters))
        extra = {"Content-Security-Policy": HTML_CSP} if entry.content_type == CONTENT_TYPES["html"] else None
        # Let the fast path answer the next GET of this exact URL without Flask (web/fastpath.py).
        raw = ("raw", request.path, request.environ.get("QUERY_STRING", ""))
        backend.cache.put(raw, (entry, *wsgi_headers(entry, extra)), stamp=_stamp)
        return _send(entry, extra)

    @app.get("/")
    @app.get("/index.html")
    def index():
        return cached("/", lambda snap, f: page_entry(snap, f))

    @app.get("/day/<day>")
    def day_page(day: str):
        try:
            when = dt.date.fromisoformat(day) if len(day) == 10 else None
        except ValueError:
            when = None
        if when is None:
            raise WebError(400, "day: expected a date as YYYY-MM-DD")

        def build(snap: Snapshot, filters: dict) -> Entry:
            from shared.digest import load_day

            with backend.session() as s:
                papers = load_day(s, when)
            if papers is None:
                raise WebError(404, f"no digest was published for {when.isoformat()}")
            return page_entry(snap, filters, papers=papers, day=when, action=f"/day/{when.isoformat()}")

        return cached(f"/day/{when.isoformat()}", build)

    def feed_view(route):
        return lambda: cached(route, lambda snap, f: feed_entry(route, snap, f))

    for route in FEED_ROUTES:
        app.add_url_rule(f"/{route}", f"feed_{route}", feed_view(route), methods=["GET"])

    @app.get("/README.md")
    def readme():
        return cached("README.md", readme_entry)

    style = None

    @app.get("/static/style.css")
    def stylesheet():
        nonlocal style
        if style is None:
            from shared.render.html import STYLE_CSS

            style = Entry.make(STYLE_CSS, "text/css; charset=utf-8", None,
                               **{"Cache-Control": "public, max-age=86400"})
        return _send(style)

    @app.get("/healthz")
    def healthz():
        body, status = health.check(lambda: backend.engine, settings)
        return Response(body, status=status, content_type="application/json",
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    @app.errorhandler(WebError)
    def web_error(exc: WebError):
        return error_response(exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(SQLAlchemyError)
    def db_error(exc: SQLAlchemyError):
        log.warning("database unavailable: %s", str(getattr(exc, "orig", exc)).splitlines()[0] if str(exc) else exc)
        backend.cache.invalidate()
        return error_response(503, "database unavailable; try again shortly")

    @app.errorhandler(UserError)
    def user_error(exc: UserError):  # e.g. an unusable DATABASE_URL; the URL itself is not echoed
        return error_response(503, "database unavailable: check DATABASE_URL")

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("unhandled error on %s", request.path)  # the traceback goes to the log only
        return error_response(500, "internal error")

    return app

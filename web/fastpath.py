"""A WSGI fast path in front of Flask for responses already in the cache.

A feed reader polls the same URL again and again; once Flask has built (or found) the response
for a (path, raw query string) under the current publication stamp, the view records it here
(with the scheme and Host as sent when its self links come from them, web/views.py),
and later GETs of the same URL are answered straight from the cache with precomputed headers:
no routing, no request object, no header re-encoding. The content-coding is negotiated here too
(web/encoding.py, memoised per Accept-Encoding value) and each coding's header lists are built
once per entry. Everything else (a miss, HEAD, a request with If-Modified-Since, a stamp check
that fails because the database is down) falls through to Flask, which owns validation,
building and errors. Correctness does not depend on this layer: removing it changes speed only.
"""
from __future__ import annotations

from typing import Callable

from .cache import DigestCache, Entry
from .encoding import etag_matches, negotiate

# A 304 carries the validators, Cache-Control and Vary, not the metadata of a body it does not have.
NOT_MODIFIED_DROP = {"Content-Type", "Content-Length", "Content-Encoding"}


def wsgi_headers(entry: Entry, extra: dict | None = None) -> tuple[list, list]:
    """(headers for 200, headers for 304) as WSGI lists, computed once per entry."""
    base = [(k, v) for k, v in {**entry.headers, **(extra or {}), "X-Content-Type-Options": "nosniff"}.items()]
    full = [("Content-Type", entry.content_type), ("Content-Length", str(len(entry.body))), *base]
    return full, [(k, v) for k, v in base if k not in NOT_MODIFIED_DROP]


class FastEntry:
    """What the fast path keeps per URL: the entry, its route's extra headers, and per coding the
    encoded entry with its ready header lists."""

    __slots__ = ("entry", "extra", "_by_coding")

    def __init__(self, entry: Entry, extra: dict | None = None):
        self.entry, self.extra, self._by_coding = entry, extra, {}

    def select(self, coding: str | None) -> tuple[Entry, list, list]:
        got = self._by_coding.get(coding)
        if got is None:
            variant = self.entry.encoded(coding)
            got = self._by_coding[coding] = (variant, *wsgi_headers(variant, self.extra))
        return got


class FastPath:
    def __init__(self, wsgi_app, cache_for: Callable[[str], DigestCache | None]):
        self.wsgi_app = wsgi_app
        self.cache_for = cache_for  # path -> the profile's cache, if one exists already

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET" and "HTTP_IF_MODIFIED_SINCE" not in environ:
            cache = self.cache_for(environ.get("PATH_INFO", ""))
            if cache is None:
                return self.wsgi_app(environ, start_response)
            try:
                _stamp, _snap, entries = cache.current()
            except Exception:  # database down: let Flask answer with its error handling
                return self.wsgi_app(environ, start_response)
            key = ("raw", environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
            hit = entries.get(key)
            if hit is None and "HTTP_HOST" in environ:  # a response whose links name the Host
                hit = entries.get(key + (environ.get("wsgi.url_scheme"), environ["HTTP_HOST"]))
            if hit is not None:
                entry, full, short = hit.select(negotiate(environ.get("HTTP_ACCEPT_ENCODING")))
                inm = environ.get("HTTP_IF_NONE_MATCH")
                if inm is not None and etag_matches(inm, entry.etag):
                    start_response("304 Not Modified", list(short))
                    return []
                start_response("200 OK", list(full))
                return [entry.body]
        return self.wsgi_app(environ, start_response)

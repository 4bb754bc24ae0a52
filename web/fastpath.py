"""A WSGI fast path in front of Flask for responses already in the cache.

A feed reader polls the same URL again and again; once Flask has built (or found) the response
for a (path, raw query string) under the current publication stamp, the view records it here,
and later GETs of the same URL are answered straight from the cache with precomputed headers:
no routing, no request object, no header re-encoding. Everything else (a miss, HEAD, a request
with If-Modified-Since only, a stamp check that fails because the database is down) falls
through to Flask, which owns validation, building and errors. Correctness does not depend on
this layer: removing it changes speed only.
"""
from __future__ import annotations

from typing import Callable

from .cache import DigestCache, Entry

_NOT_MODIFIED_DROP = {"Content-Type", "Content-Length"}


def wsgi_headers(entry: Entry, extra: dict | None = None) -> tuple[list, list]:
    """(headers for 200, headers for 304) as WSGI lists, computed once per entry."""
    base = [(k, v) for k, v in {**entry.headers, **(extra or {}), "X-Content-Type-Options": "nosniff"}.items()]
    full = [("Content-Type", entry.content_type), ("Content-Length", str(len(entry.body))), *base]
    return full, [(k, v) for k, v in base if k not in _NOT_MODIFIED_DROP]


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
            hit = entries.get(("raw", environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")))
            if hit is not None:
                entry, full, short = hit
                inm = environ.get("HTTP_IF_NONE_MATCH")
                if inm is None:
                    start_response("200 OK", list(full))
                    return [entry.body]
                if inm == entry.etag:
                    start_response("304 Not Modified", list(short))
                    return []
        return self.wsgi_app(environ, start_response)

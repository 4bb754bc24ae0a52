"""One HTTP GET over the standard library (urllib.request): all the arXiv client needs.

Why not httpx here: a daily `arxiv-bot run` makes one request to arXiv, and importing httpx (with
the CLI extras it loads when click and rich are installed) costs about 0.1 s and 8 MB, a tenth
of the whole pass (bench/bench_daily_pass.py). What httpx gave by default is kept: proxies from
the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), redirects NOT followed (a 3xx is returned
as it is), gzip asked for and decoded (arXiv's feeds shrink about 5x), for https the
certificates of SSL_CERT_FILE / SSL_CERT_DIR when set, else certifi's (loaded only when a URL is
https).
"""
from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlencode


class TransportError(Exception):
    """No usable answer: connection refused or reset, timeout, a body cut off or undecodable."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Message
    body: bytes


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx itself goes back to the caller


def _reason(exc: BaseException) -> str:
    """A short name for what went wrong ('TimeoutError', 'ConnectionRefusedError', ...)."""
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    return type(exc).__name__


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decode a gzip body, refusing one that would inflate beyond `limit` bytes."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise TransportError(f"broken gzip body ({exc})") from None
    if len(out) > limit or d.unconsumed_tail:
        raise TransportError(f"gzip body inflates beyond {limit} bytes")
    if not d.eof:
        raise TransportError("gzip body cut off")
    return out


def _tls_context():
    """Certificates as httpx found them: SSL_CERT_FILE / SSL_CERT_DIR (a site's own CA, e.g.
    behind an inspecting proxy), else certifi's bundle."""
    import ssl

    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if not (cafile or capath):
        import certifi

        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


class Transport:
    """GET with a User-Agent and a timeout (per connect and per read, like a socket timeout)."""

    def __init__(self, user_agent: str, timeout: float, tls: bool, max_bytes: int):
        self.user_agent, self.timeout, self.max_bytes = user_agent, timeout, max_bytes
        handlers: list = [_NoRedirect()]
        if tls:
            handlers.append(urllib.request.HTTPSHandler(context=_tls_context()))
        self._opener = urllib.request.build_opener(*handlers)

    def get(self, url: str, params: dict | None = None) -> Response:
        """The response, whatever its status. Raises TransportError when there is none."""
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        request = urllib.request.Request(url, headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip"})
        try:
            try:
                resp = self._opener.open(request, timeout=self.timeout)
            except urllib.error.HTTPError as exc:  # a status >= 400 (or 3xx): still a response
                resp = exc
            with resp:
                status, headers, body = resp.status, resp.headers, resp.read()
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise TransportError(_reason(exc)) from None
        if (headers.get("Content-Encoding") or "").strip().lower() == "gzip":
            body = _gunzip(body, self.max_bytes)
        return Response(status, headers, body)

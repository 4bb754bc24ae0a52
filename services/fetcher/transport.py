"""One HTTP GET for the arXiv client, over httpx (the project's HTTP client).

What the client relies on: one connection at a time (arXiv's terms), redirects NOT followed (a
3xx is returned as it is, and its Location is never requested), gzip asked for and decoded with
a bound on the decoded size (arXiv's feeds shrink about 5x; a bomb does not get to inflate),
proxies and SSL_CERT_FILE / SSL_CERT_DIR from the environment (httpx's trust_env), certifi's
bundle otherwise. The client is built (and httpx imported) with the Transport, before the first
pacer slot: work done between a slot and its request would shift the request late.
Every failure without a usable answer is a TransportError naming what went wrong at the bottom
of the exception chain ("ConnectionRefusedError", "SSLCertVerificationError", "ReadTimeout").
"""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Mapping


class TransportError(Exception):
    """No usable answer: connection refused or reset, timeout, a body cut off or too large."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # case-insensitive (httpx.Headers)
    body: bytes


def _httpx():
    """httpx, without its command-line client: httpx's __init__ imports httpx._main, which pulls
    in click, rich and pygments whenever they happen to be installed (they are: celery and our
    progress bars), about 0.2 s and 8 MB of a one-shot `arxiv-bot run` that never uses them.
    A stand-in module answers that import; `httpx.main` is the only name it provides."""
    if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
        cli = types.ModuleType("httpx._main")
        cli.main = _no_cli
        sys.modules["httpx._main"] = cli
    import httpx

    return httpx


def _no_cli() -> None:
    print("the httpx command line client is not loaded in arxiv-bot", file=sys.stderr)


def _reason(exc: BaseException) -> str:
    """The innermost cause's name: what really failed under httpx's wrapping."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return type(exc).__name__


class Transport:
    """GET with a User-Agent and a timeout (per connect and per read), one connection at a time."""

    def __init__(self, user_agent: str, timeout: float, max_bytes: int):
        httpx = _httpx()
        self.max_bytes = max_bytes
        self._client = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False,
                                    limits=httpx.Limits(max_connections=1),
                                    headers={"User-Agent": user_agent, "Accept-Encoding": "gzip"})

    def get(self, url: str, params: dict | None = None) -> Response:
        """The response, whatever its status. Raises TransportError when there is none."""
        httpx = _httpx()

        try:
            with self._client.stream("GET", url, params=params) as resp:
                chunks, size = [], 0
                for chunk in resp.iter_bytes():  # decoded (gzip) as it arrives: bounded here
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TransportError(f"body larger than {self.max_bytes} bytes")
                    chunks.append(chunk)
                return Response(resp.status_code, resp.headers, b"".join(chunks))
        except httpx.HTTPError as exc:  # timeouts, refused/reset connections, broken encodings
            raise TransportError(_reason(exc)) from None

    def close(self) -> None:
        self._client.close()

"""Content-coding of cached responses (RFC 9110 8.4, 12.5.3): which coding a request gets, and
the compressed bytes, made once per cache entry (so once per publication) and then reused.

- `negotiate(accept_encoding)`: the coding to send, by the client's q-values, preferring br
  over gzip on a tie; None means identity (no header, `identity`, `*;q=0`, nothing we have).
  Results are memoised per header value: clients send a handful of distinct ones.
- `compress(body, coding)`: gzip (level 9, mtime 0, so every worker makes the same bytes) or br
  (quality 6: nearly all of quality 11's gain at a hundredth of the CPU) when the `brotli`
  package is installed.
- Every encoded variant has its own strong ETag, `"<identity tag>-<coding>"` (RFC 9110 8.8.3: a
  strong validator differs between content-codings), derived from the identity one so that
  every worker process gives the same tag without comparing bytes.
"""
from __future__ import annotations

import gzip
from functools import lru_cache

try:
    import brotli
except ImportError:  # br is offered only when the package is there
    brotli = None

CODINGS = ("br", "gzip") if brotli is not None else ("gzip",)  # server preference on equal q
MIN_SIZE = 512  # smaller bodies are sent as they are (the headers would eat the saving)


def compress(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body, compresslevel=9, mtime=0)
    if coding == "br" and brotli is not None:
        return brotli.compress(body, quality=6, mode=brotli.MODE_TEXT)
    raise ValueError(f"unsupported content-coding {coding!r}")


def _qvalue(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0  # a malformed weight: do not risk sending what the client cannot read
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


@lru_cache(maxsize=256)
def negotiate(accept_encoding: str | None) -> str | None:
    """The content-coding to use for a request with this Accept-Encoding, or None (identity)."""
    if not accept_encoding:
        return None
    weights: dict[str, float] = {}
    for part in accept_encoding[:1024].split(","):
        name, *params = part.split(";")
        name = name.strip().lower()
        if name:
            weights[name] = _qvalue(params)
    star = weights.get("*")
    best, best_q = None, 0.0
    for coding in CODINGS:  # in server preference order: a later one must be strictly better
        q = weights.get(coding, weights.get("x-gzip") if coding == "gzip" else None)
        if q is None:
            q = star if star is not None else 0.0
        if q > best_q:
            best, best_q = coding, q
    return best


def variant_etag(etag: str, coding: str) -> str:
    """'"abc"' -> '"abc-gzip"' (a weak tag keeps its W/ prefix)."""
    weak = etag.startswith("W/")
    core = etag[2:] if weak else etag
    return f'{"W/" if weak else ""}{core[:-1]}-{coding}"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match against the selected representation's tag, by weak comparison (RFC 9110
    13.1.2: W/ prefixes are ignored; `*` matches any current representation)."""
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == opaque for t in if_none_match.split(","))

"""One GET of a paper's file from arXiv, on arXiv's terms.

Every request waits for the shared pacer first (shared/arxiv_pacing.py: one request per
fetch.min_interval_seconds across ALL processes, the fetcher's included) and carries the
descriptive User-Agent (shared.arxiv.user_agent; set on the client by `make_client`). Failures
are sorted the fetcher's way: 429, 5xx, timeouts and connection errors are a TransientError
(with the server's Retry-After), which the task layer retries with jittered, capped backoff
(shared.tasking) instead of a worker sleeping here; any other status is returned for the caller
to decide (a 404 means "not there": the next source is tried). Bodies are read up to
MAX_BYTES, so a huge file cannot fill the worker's memory.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.errors import PermanentError, TransientError, retry_after_seconds

MAX_BYTES = 60 * 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    status: int
    body: bytes
    content_type: str


def make_client(contact: str, timeout: float):
    """An httpx.Client for arXiv: the User-Agent, one connection at a time (as the fetcher's)."""
    import httpx

    from shared.arxiv import user_agent

    return httpx.Client(headers={"User-Agent": user_agent(contact)}, follow_redirects=True,
                        timeout=httpx.Timeout(timeout, pool=4 * timeout),
                        limits=httpx.Limits(max_connections=1))


def _safe(url: str) -> str:
    """Masked (shared.redact.mask_url: no credentials), then without the query string."""
    from shared.redact import mask_url

    return mask_url(url).split("?", 1)[0].split("#", 1)[0]


def get(http, pacer, url: str, max_bytes: int | None = None) -> Fetched:
    """GET `url` after `pacer.wait()` (see the module docstring)."""
    import httpx

    max_bytes = max_bytes or MAX_BYTES
    pacer.wait()
    try:
        with http.stream("GET", url) as resp:
            if resp.status_code == 429 or resp.status_code >= 500:
                raise TransientError(f"arXiv request {_safe(url)} failed: HTTP {resp.status_code}",
                                     retry_after=retry_after_seconds(resp.headers))
            chunks, size = [], 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise PermanentError(f"arXiv file too large (over {max_bytes // (1024 * 1024)} MB): {_safe(url)}")
                chunks.append(chunk)
            return Fetched(resp.status_code, b"".join(chunks), resp.headers.get("content-type", ""))
    except httpx.TimeoutException:
        raise TransientError(f"arXiv request {_safe(url)} timed out") from None
    except httpx.HTTPError as exc:
        raise TransientError(f"arXiv request {_safe(url)} failed ({type(exc).__name__})") from None

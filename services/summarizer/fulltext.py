"""Full text of a paper for ai_summary.input = "fulltext": the PDF's URL, download, text.

`fetch_pdf` goes through the fetcher's arXiv pacing (the caller passes the pacer: arXiv allows
one request every 3 s across ALL processes); `extract_text` turns the bytes into plain text cut
to the token budget. Broken PDFs are a PermanentError with one line saying why.
"""
from __future__ import annotations

import io
import logging
import re

from shared.errors import PermanentError, TransientError, retry_after_seconds

from .llm import cut_to_tokens, estimate_tokens

log = logging.getLogger(__name__)

MAX_PDF_BYTES = 60 * 1024 * 1024
_SPACES_RE = re.compile(r"[ \t\f\v\u00a0\u2000-\u200b\u3000]+")
_BLANKS_RE = re.compile(r"\n\s*\n+")
_HYPHEN_BREAK_RE = re.compile(r"(\w)-\n(\w)")


def fetch_pdf(http, pacer, url: str, timeout: float) -> bytes:
    """GET `url` with the httpx.Client `http` after `pacer.wait()`. Returns the PDF's bytes.
    Raises TransientError for 429/5xx/timeouts/connection errors (with Retry-After if sent)
    and PermanentError for other statuses or a body that is not a PDF."""
    import httpx

    pacer.wait()
    try:
        resp = http.get(url, timeout=timeout, follow_redirects=True)
    except httpx.TimeoutException:
        raise TransientError(f"PDF download timed out: {url}") from None
    except httpx.HTTPError as exc:
        raise TransientError(f"PDF download failed ({type(exc).__name__}): {url}") from None
    if resp.status_code == 429 or resp.status_code >= 500:
        raise TransientError(f"PDF download: HTTP {resp.status_code} from {url}",
                             retry_after=retry_after_seconds(resp.headers))
    if resp.status_code != 200:
        raise PermanentError(f"PDF download: HTTP {resp.status_code} from {url}")
    body = resp.content
    if not body.lstrip()[:5].startswith(b"%PDF"):
        raise PermanentError(f"not a PDF ({resp.headers.get('content-type', 'no content type')}): {url}")
    if len(body) > MAX_PDF_BYTES:
        raise PermanentError(f"PDF too large ({len(body) // (1024 * 1024)} MB): {url}")
    return body


def pdf_text(http, pacer, url: str, timeout: float, max_tokens: int, cache=None, keep: int = 16) -> str:
    """fetch_pdf + extract_text. With `cache` (an OrderedDict), the last `keep` texts are kept,
    so a task retried in the same process (rate-limit countdown, provider error) does not
    download the PDF again. Raises as fetch_pdf and extract_text."""
    key = (url, max_tokens)
    if cache is not None and key in cache:
        cache.move_to_end(key)
        return cache[key]
    text = extract_text(fetch_pdf(http, pacer, url, timeout), max_tokens)
    if cache is not None:
        cache[key] = text
        while len(cache) > keep:
            cache.popitem(last=False)
    return text


def normalise_whitespace(text: str) -> str:
    """Runs of spaces/tabs become one space, line-break hyphenation is joined, blank-line runs
    become one blank line, NULs are dropped; lines are stripped."""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    text = _HYPHEN_BREAK_RE.sub(r"\1\2", text)
    text = _SPACES_RE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANKS_RE.sub("\n\n", text).strip()


def extract_text(pdf_bytes: bytes, max_tokens: int) -> str:
    """The PDF's text, whitespace-normalised and cut to `max_tokens` (estimate_tokens).
    Pages are read only until the budget is full. Raises PermanentError (one line) for a PDF
    that cannot be read, is encrypted, or has no extractable text (e.g. scanned images)."""
    from pypdf import PdfReader

    if not pdf_bytes:
        raise PermanentError("cannot read PDF: empty file")
    try:
        reader = PdfReader(io.BytesIO(pdf_bytes))
        if reader.is_encrypted and not reader.decrypt(""):
            raise PermanentError("cannot read PDF: it is encrypted")
        parts: list[str] = []
        used = 0
        for page in reader.pages:
            try:
                text = page.extract_text() or ""
            except Exception as exc:  # one bad page should not lose the others
                log.debug("PDF page skipped: %s", type(exc).__name__)
                continue
            parts.append(text)
            used += estimate_tokens(text)
            if used > max_tokens:
                break
    except PermanentError:
        raise
    except Exception as exc:  # pypdf raises many types on broken files (PdfReadError, KeyError...)
        reason = " ".join(str(exc).split())[:150] or type(exc).__name__
        raise PermanentError(f"cannot read PDF: {reason}") from None
    text = normalise_whitespace("\n\n".join(parts))
    if not text:
        raise PermanentError("cannot read PDF: no extractable text (scanned images?)")
    return cut_to_tokens(text, max_tokens)

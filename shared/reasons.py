"""Why a summary failed, in our own words: the reason codes every public output uses.

The provider's own text (which may echo part of the API key, or carry terminal escape
sequences) never reaches README.md, the feeds, the page, papers.json, e-mails or chat: a failed
summary job's note is `public_note(code, http_status)`, a fixed phrase per reason code plus at
most the HTTP status number. The provider's text, cleaned and scrubbed of secrets, stays in the
logs and in summaries.error for the operator.

`classify(text)` maps any message to (code, status): our own exceptions carry `reason_code`
and `http_status` (services/summarizer/llm.py); older notes stored before the codes existed
(the provider's text, prefixed with ours) are mapped by their prefix, so re-rendering an old
day publishes our words too. `public_reason(note)` is what a renderer shows for a stored note:
the note itself when it is one of ours, else the phrase its prefix maps to.
"""
from __future__ import annotations

import re

REASONS = {
    "rate_limited": "rate limited by the LLM provider",
    "rejected": "the LLM provider rejected the request",
    "unauthorized": "the LLM provider refused the API key",
    "timed_out": "the LLM request timed out",
    "unreachable": "the LLM server could not be reached",
    "provider_error": "the LLM provider reported an error",
    "malformed": "the LLM server sent a malformed answer",
    "empty": "the model returned an empty answer",
    "database": "the database was unavailable",
    "internal": "an internal error (see the logs)",
}
# Message prefixes of the exceptions (and of notes stored by earlier versions) -> code.
_PREFIXES = (
    ("llm rate limited", "rate_limited"), ("llm request rejected (http 401", "unauthorized"),
    ("llm request rejected (http 403", "unauthorized"), ("llm request rejected", "rejected"),
    ("llm request timed out", "timed_out"), ("cannot reach the llm", "unreachable"),
    ("llm server error", "provider_error"), ("the llm server sent a malformed", "malformed"),
    ("empty answer", "empty"), ("database unavailable", "database"), ("llm client error", "provider_error"),
)
_STATUS = re.compile(r"\(HTTP (\d{3})\)")
_OURS = re.compile("^(?:" + "|".join(re.escape(p) for p in REASONS.values()) + r")(?: \(HTTP \d{3}\))?$")


def classify(text: str | None) -> tuple[str, int | None]:
    """(reason code, HTTP status or None) for an error message or a stored note."""
    text = (text or "").strip()
    for code, phrase in REASONS.items():
        if text.startswith(phrase):
            m = _STATUS.match(text[len(phrase):].strip())
            return code, int(m.group(1)) if m else None
    lowered = text.lower()
    for prefix, code in _PREFIXES:
        if lowered.startswith(prefix):
            m = _STATUS.search(text[:60])
            return code, int(m.group(1)) if m else None
    return "internal", None


def reason_of(exc: BaseException) -> tuple[str, int | None]:
    """(code, HTTP status) of an exception: its own reason_code when it has one."""
    code = getattr(exc, "reason_code", None)
    if code in REASONS:
        return code, getattr(exc, "http_status", None)
    return classify(str(exc))


def public_note(code: str, status: int | None = None) -> str:
    """The phrase for `code` (unknown codes: internal), with the HTTP status number if any."""
    phrase = REASONS.get(code, REASONS["internal"])
    return f"{phrase} (HTTP {int(status)})" if status else phrase


def public_reason(note: str | None) -> str:
    """What a public output shows for a failed summary's stored note: never its raw text."""
    if note and _OURS.match(note):
        return note
    return public_note(*classify(note))

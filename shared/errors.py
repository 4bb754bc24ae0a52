"""Error types every stage uses to tell the task layer what to do with a failure.

TransientError: worth retrying (timeouts, HTTP 429/5xx, connection errors); may carry the
server's Retry-After. PermanentError: bad data or a bad request; fail at once and record why.
UserError: a problem the user must fix (bad config, unreachable database); the CLI prints its
message as one line and exits non-zero.
"""
from __future__ import annotations


class ArxivBotError(Exception):
    """Base class for all errors arxiv-bot raises on purpose."""


class UserError(ArxivBotError):
    """Shown to the user as one clear line (no traceback); `exit_code` is the CLI status."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class ConfigError(UserError):
    """config.json or the environment is invalid. Exit status 2: nothing was started."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=2)


class TransientError(ArxivBotError):
    """A failure that may succeed later. `retry_after` (seconds) comes from the server if it said."""

    def __init__(self, message: str, retry_after: float | None = None, counts: bool = True):
        super().__init__(message)
        self.retry_after = retry_after
        # False for waits that are not failures (our own rate limit, another worker's lease):
        # they do not use up the retry budget.
        self.counts = counts


class PermanentError(ArxivBotError):
    """A failure that will not go away by retrying (bad data, HTTP 400, unknown category)."""


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (a driver error's original message when it wraps
    one), or its class name when it says nothing: what a one-line report shows."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def retry_after_seconds(headers) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (delta-seconds or an HTTP date),
    given a headers mapping (case-insensitive, as httpx's) or the header's value itself. None if
    absent or unreadable; never negative, never infinite."""
    import datetime as dt
    import email.utils
    import math
    import time

    if headers is None:
        return None
    if isinstance(headers, str):
        headers = {"retry-after": headers}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(str(value).strip()) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds):
            return max(0.0, seconds)
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(str(value).strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
            return max(0.0, when.timestamp() - time.time())
    return None

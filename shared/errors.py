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

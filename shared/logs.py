"""Logging set-up: one line per event, INFO by default (LOG_LEVEL), nothing secret
(every line goes through shared.redact.LogRedactor: URLs masked, configured credentials scrubbed).

Stage handlers log with the pass id and paper id in the message. Chatty client libraries are
kept at WARNING: their request logs would add noise, and headers must never reach a log.
"""
from __future__ import annotations

import logging
import os

from .redact import LogRedactor

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


def setup_logging(level: str | None = None) -> None:
    level = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
    root = logging.getLogger()
    if not any(getattr(h, "_arxiv_bot", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._arxiv_bot = True
        handler.addFilter(LogRedactor())  # no configured credential in any line (shared/redact.py)
        root.addHandler(handler)
    root.setLevel(getattr(logging, level, logging.INFO))
    for noisy in ("httpx", "httpcore", "openai", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

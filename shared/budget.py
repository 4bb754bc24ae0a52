"""What summaries cost, and who gets the daily token budget: decided before any call is made.

`ai_summary.daily_token_budget` is a threshold: no call starts once the day's tokens (paid, from
the run records) plus the estimated cost of the calls already granted reach it; the call that
crosses it may finish. `plan` grants the picks of a selection in rank order, before any
summarizer runs, so concurrent summarizers (threads in embedded mode, replicas in distributed
mode) cannot race for the last tokens and the best-ranked papers get them. The summarizer's
lease keeps a last check at call time (tokens spent meanwhile by another pass).
"""
from __future__ import annotations

import datetime as dt
import math
import logging
import re

from sqlalchemy import func, select

from .models import Pass

_CJK_RE = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0002fa1f]")
log = logging.getLogger(__name__)
PROMPT_OVERHEAD = 600  # system prompt + template + framing, in tokens (the built-in ones use ~450)


def estimate_tokens(text: str) -> int:
    """A cheap upper-ish estimate: 1 token per CJK character, 1 per 4 other characters (rounded
    up). Monotonic in the text's length, so prefixes never cost more."""
    if not text:
        return 0
    cjk = len(_CJK_RE.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


def input_cost(ai, title: str, abstract: str, text_tokens: int | None = None) -> int:
    """Estimated prompt tokens of one summary call, by input mode. "abstract": the abstract and
    the prompt. "fulltext": the whole prompt is kept within max_input_tokens, so that is the
    cost, or less when the paper's text is known (read before: `text_tokens`, its size with the
    abstract) and shorter."""
    own = estimate_tokens(title) + PROMPT_OVERHEAD
    if ai.input != "fulltext":
        return own + estimate_tokens(abstract)
    if text_tokens is None:
        return ai.max_input_tokens
    return min(ai.max_input_tokens, own + text_tokens)


def summary_cost(ai, title: str, abstract: str, text_tokens: int | None = None) -> int:
    """Estimated tokens of one summary call: input_cost plus the completion cap (max_tokens)."""
    return input_cost(ai, title, abstract, text_tokens) + ai.max_tokens


def tokens_used_today(s) -> int:
    """LLM tokens paid for since 00:00 UTC, from the run records (passes opened today). Summary
    rows are not used: their updated_at also moves when an old summary is marked stale."""
    start = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(s.scalar(select(func.coalesce(func.sum(Pass.prompt_tokens + Pass.completion_tokens), 0))
                        .where(Pass.created_at >= start)) or 0)


def plan(budget: int | None, used: int, picks: list[tuple[str, int]]) -> tuple[list[str], list[str], str]:
    """Grant `picks` ([(paper id, estimated cost)] in the order they deserve the budget) while
    used + granted < budget; free picks (cost 0) always. Returns (granted ids, refused ids, the reason to record)."""
    if budget is None:
        return [pid for pid, _ in picks], [], ""
    granted, refused, reserved = [], [], 0
    for pid, cost in picks:
        if cost == 0 or used + reserved < budget:  # cost 0: an existing summary is reused
            granted.append(pid)
            reserved += cost
        else:
            refused.append(pid)
    # The same words whatever the numbers, so re-running a day publishes the same digest.
    reason = f"the tokens used today (UTC) and granted to higher-ranked papers reached the budget of {budget}"
    if refused:
        log.info("daily token budget %d: %d used today, about %d granted to %d papers, %d refused", budget, used,
                 reserved, len(granted), len(refused))
    return granted, refused, reason

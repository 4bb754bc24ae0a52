"""Who may call the provider for a paper: the summary row's lease, decided in the database.

`claim` runs inside the caller's transaction (the summary row locked FOR UPDATE): it returns a
finished summary to reuse, or marks the summary job skipped/over budget, or takes the lease. A live
lease held by anyone else is a wait (TransientError, not counted as a failure); an expired one, one
whose owner is known dead (shared.liveness: its liveness key is gone, or it was a process of this
host that no longer runs), or a failed summary (an earlier pass gave up) is taken over at once.
The holder's heartbeat renews the lease while the call runs (`renewer`), so ai_summary.lease_seconds
can be short. A call that was in flight when its worker died (summaries.inflight_tokens) is
counted at the take-over: one provider call, and its tokens estimated (the prompt's estimate plus
half of max_tokens) and marked as estimates (passes.estimated_tokens).
`release` gives the lease up at once on every error path, so a retry or a peer need not wait.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from shared import liveness, passes
from shared.budget import tokens_used_today
from shared.errors import TransientError
from shared.models import SUM_BUDGET, SUM_SKIPPED, SUMMARY_DONE, SUMMARY_LEASED, Pass, Paper, Summary, SummaryJob, utcnow

log = logging.getLogger(__name__)


def lease_owner() -> str:
    """host:pid:thread of the caller, taken at call time: a worker builds its runtime before
    forking its pool, so anything computed then would be shared by every child."""
    return liveness.owner_id()


def claim(rt, s, job: SummaryJob, paper: Paper, key: dict) -> Summary | None:
    """Decide this paper's fate in one transaction. Returns a finished summary to reuse; or
    None after either marking `job` budget/skipped or taking the lease (the job stays pending).
    Raises TransientError(counts=False) while another worker holds an unexpired lease."""
    ai = rt.config.ai_summary
    summ = s.scalars(select(Summary).filter_by(**key).with_for_update()).first()
    now = utcnow()
    if summ is not None and summ.status == SUMMARY_DONE:
        return summ
    off = passes.summaries_off_reason(rt.config, rt.settings, s.get(Pass, job.pass_id))
    if off is not None:  # e.g. this replica has no key: never call, say why
        job.state, job.note = SUM_SKIPPED, off
        return None
    # ANY unexpired lease means a call is in flight, even one with our owner name (a duplicate
    # message in another thread of this process): the lease is given up on every error path.
    if summ is not None and summ.status == SUMMARY_LEASED and summ.lease_expires_at and summ.lease_expires_at > now:
        if not liveness.verdict(rt.settings.redis_url).dead(summ.lease_owner):
            wait = (summ.lease_expires_at - now).total_seconds()
            raise TransientError(f"{paper.id}: being summarized by {summ.lease_owner}", retry_after=min(wait, 10),
                                 counts=False)
        log.info("%s: taking over the lease of %s (no longer running)", paper.id, summ.lease_owner)
    if summ is not None and summ.inflight_tokens is not None:
        _count_lost_call(rt, s, job.pass_id, summ)
    if ai.daily_token_budget is not None:
        used = tokens_used_today(s)
        if used >= ai.daily_token_budget:
            job.state = SUM_BUDGET
            job.note = f"{used} of {ai.daily_token_budget} tokens used today (UTC)"
            return None
    if summ is None:
        try:
            with s.begin_nested():
                summ = Summary(**key, status=SUMMARY_LEASED)
                s.add(summ)
                s.flush()
        except IntegrityError:
            raise TransientError(f"{paper.id}: another worker is claiming it", retry_after=2, counts=False) from None
    # A failed summary (an earlier pass gave up) or an expired lease (a crashed worker) is taken over.
    summ.status, summ.lease_owner = SUMMARY_LEASED, lease_owner()
    summ.lease_expires_at = now + dt.timedelta(seconds=ai.lease_seconds)
    summ.attempts += 1
    job.updated_at = now  # the sweep leaves work in progress alone
    return None


def _count_lost_call(rt, s, pass_id: int, summ: Summary) -> None:
    """The previous holder died during its provider call: the call is counted, its tokens
    estimated (the answer, and so the real usage, died with the worker) and marked as such."""
    prompt_tokens, completion_tokens = summ.inflight_tokens, rt.config.ai_summary.max_tokens // 2
    summ.provider_calls += 1
    summ.inflight_tokens = None
    s.execute(update(Pass).where(Pass.id == pass_id).values(
        prompt_tokens=Pass.prompt_tokens + prompt_tokens, completion_tokens=Pass.completion_tokens + completion_tokens,
        estimated_tokens=Pass.estimated_tokens + prompt_tokens + completion_tokens))
    log.warning("pass %d paper %s: a provider call was lost with its worker; about %d tokens counted as an "
                "estimate", pass_id, summ.paper_id, prompt_tokens + completion_tokens)


def renewer(rt, key: dict):
    """The heartbeat's renewal of our lease (shared.liveness.hold_lease)."""
    owner = lease_owner()
    seconds = rt.config.ai_summary.lease_seconds

    def renew() -> None:
        with rt.session() as s:
            s.execute(update(Summary).filter_by(**key, lease_owner=owner, status=SUMMARY_LEASED)
                      .values(lease_expires_at=utcnow() + dt.timedelta(seconds=seconds)))
    return renew


def call_started(s, key: dict, tokens: int) -> None:
    """Record the call about to be made (its estimated prompt tokens) on our leased summary, in
    the caller's transaction."""
    s.execute(update(Summary).filter_by(**key, lease_owner=lease_owner(), status=SUMMARY_LEASED)
              .values(inflight_tokens=tokens))


def release(rt, key: dict, error: str) -> None:
    """Give up our lease at once (a retry or a peer may take over), keeping the last error. The
    owner is cleared too: a heartbeat renewing our lease a moment later must not revive it."""
    try:
        with rt.session() as s:
            s.execute(update(Summary).filter_by(**key, lease_owner=lease_owner(), status=SUMMARY_LEASED)
                      .values(lease_owner=None, lease_expires_at=utcnow(), error=error[:1000], inflight_tokens=None))
    except Exception as exc:  # the original error matters more; the lease expires anyway
        log.warning("could not release the summary lease: %s", type(exc).__name__)

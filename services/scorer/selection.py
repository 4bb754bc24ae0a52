"""The day's selection: run exactly once per pass, inside the transaction that wins the
scoring -> summarizing flip (shared.passes.advance), so a crash rolls both back together.

Candidates: scored items whose (effective) announce type is in `announce_types`, not excluded,
with at least one match and score >= min_score. Order: score descending, then arXiv id (ties
break deterministically). The top `max_papers` get a rank; the first
`max_papers_to_summarize` of them need a summary (pending) unless summaries are off for the
pass, in which case they are marked skipped with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.config import Config
from shared.models import SUM_PENDING, SUM_SKIPPED, PassItem


@dataclass
class Selection:
    candidates: int
    ranked: list[str]
    to_summarize: list[str]


def select_digest(session: Session, pass_id: int, config: Config, summaries_off_reason: str | None) -> Selection:
    rows = session.execute(
        select(PassItem.paper_id, PassItem.score, PassItem.announce_type, PassItem.excluded_by, PassItem.matched)
        .where(PassItem.pass_id == pass_id, PassItem.scored.is_(True))).all()
    types = set(config.announce_types)
    cands = [(r.paper_id, r.score or 0.0) for r in rows
             if r.announce_type in types and not r.excluded_by and r.matched
             and (r.score or 0.0) >= config.min_score]
    cands.sort(key=lambda c: (-c[1], c[0]))
    ranked = [pid for pid, _ in cands[:config.max_papers]]
    n_sum = min(config.ai_summary.max_papers_to_summarize, len(ranked))
    to_sum = ranked[:n_sum] if summaries_off_reason is None else []

    cand_ids = [pid for pid, _ in cands]
    for i in range(0, len(cand_ids), 1000):
        session.execute(update(PassItem).where(PassItem.pass_id == pass_id,
                                               PassItem.paper_id.in_(cand_ids[i:i + 1000]))
                        .values(candidate=True).execution_options(synchronize_session=False))
    for rank, pid in enumerate(ranked, start=1):
        values = {"rank": rank}
        if rank <= n_sum:
            if summaries_off_reason is None:
                values["summary_state"] = SUM_PENDING
            else:
                values.update(summary_state=SUM_SKIPPED, note=summaries_off_reason)
        session.execute(update(PassItem).where(PassItem.pass_id == pass_id, PassItem.paper_id == pid)
                        .values(**values).execution_options(synchronize_session=False))
    return Selection(candidates=len(cands), ranked=ranked, to_summarize=to_sum)

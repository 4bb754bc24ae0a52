"""The day's selection: run exactly once per pass, inside the transaction that wins the
scoring -> summarizing flip (shared.passes.advance), so a crash rolls both back together.

Candidates: scored items whose (effective) announce type is in `announce_types`, not excluded,
with at least one match and score >= min_score. Order: score descending, then arXiv id (ties
break deterministically). The top `max_papers` get a rank; the first
`max_papers_to_summarize` of them need a summary (pending) unless summaries are off for the
pass, in which case they are marked skipped with the reason. With a daily token budget, the
picks are granted in rank order before any call (shared.budget.plan); a paper whose summary
already exists costs nothing (it is reused), the others beyond the budget are marked `budget`
with the numbers. Every pending pick gets its planned prompt tokens (pass_items.input_tokens:
max_input_tokens for a full text not read yet, the real size of one read before), so the cost
is visible before it is spent.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared import budget
from shared.config import Config
from shared.models import (SOURCE_ABSTRACT, SUM_BUDGET, SUM_PENDING, SUM_SKIPPED, SUMMARY_DONE, Paper, PaperText,
                           PassItem, Summary)


@dataclass
class Selection:
    candidates: int
    ranked: list[str]
    to_summarize: list[str]


def select_digest(session: Session, pass_id: int, config: Config, summaries_off_reason: str | None,
                  model: str) -> Selection:
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
    to_sum, over_budget, budget_note, planned = _grant_budget(session, config, model, to_sum)

    cand_ids = [pid for pid, _ in cands]
    for i in range(0, len(cand_ids), 1000):
        session.execute(update(PassItem).where(PassItem.pass_id == pass_id,
                                               PassItem.paper_id.in_(cand_ids[i:i + 1000]))
                        .values(candidate=True).execution_options(synchronize_session=False))
    for rank, pid in enumerate(ranked, start=1):
        values = {"rank": rank}
        if rank <= n_sum:
            if summaries_off_reason is not None:
                values.update(summary_state=SUM_SKIPPED, note=summaries_off_reason)
            elif pid in over_budget:
                values.update(summary_state=SUM_BUDGET, note=budget_note)
            else:
                values.update(summary_state=SUM_PENDING, input_tokens=planned.get(pid))
        session.execute(update(PassItem).where(PassItem.pass_id == pass_id, PassItem.paper_id == pid)
                        .values(**values).execution_options(synchronize_session=False))
    return Selection(candidates=len(cands), ranked=ranked, to_summarize=to_sum)


def _grant_budget(session: Session, config: Config, model: str,
                  picks: list[str]) -> tuple[list[str], set, str, dict[str, int]]:
    """(granted ids in rank order, ids over the daily budget, the note for those, the planned
    prompt tokens of each pick: shown by `status` before any of it is spent)."""
    ai = config.ai_summary
    if not picks:
        return picks, set(), "", {}
    rows = session.execute(select(Paper.id, Paper.version, Paper.title, Paper.abstract)
                           .where(Paper.id.in_(picks))).all()
    info = {r.id: r for r in rows}
    # A text read before (any language or model) gives the real size instead of the cap.
    texts = {r.paper_id: r for r in session.execute(
        select(PaperText.paper_id, PaperText.source, PaperText.tokens)
        .join(Paper, (Paper.id == PaperText.paper_id) & (Paper.version == PaperText.version))
        .where(PaperText.paper_id.in_(picks)))}
    known = {pid: _text_tokens(texts.get(pid), info[pid]) for pid in picks}
    planned = {pid: budget.input_cost(ai, info[pid].title, info[pid].abstract, known[pid]) for pid in picks}
    if ai.daily_token_budget is None:
        return picks, set(), "", planned
    reusable = set(session.scalars(
        select(Summary.paper_id).join(Paper, (Paper.id == Summary.paper_id) & (Paper.version == Summary.version))
        .where(Summary.paper_id.in_(picks), Summary.status == SUMMARY_DONE, Summary.model == model,
               Summary.language == ai.language, Summary.input_mode == ai.input)))
    costs = [(pid, 0 if pid in reusable else budget.summary_cost(ai, info[pid].title, info[pid].abstract, known[pid]))
             for pid in picks]
    granted, refused, note = budget.plan(ai.daily_token_budget, budget.tokens_used_today(session), costs)
    return granted, set(refused), note, planned


def _text_tokens(text, paper) -> int | None:
    """The size of what the model would read of a paper whose text was read before, else None."""
    if text is None:
        return None
    abstract = budget.estimate_tokens(paper.abstract)
    return abstract if text.source == SOURCE_ABSTRACT else text.tokens + abstract

"""Scorer stage logic (Celery-free; tasks.py and the embedded runner call these).

score_batch scores the not-yet-scored items of a batch (a redelivered batch re-scores nothing),
commits, then checks in the database whether the whole pass is scored. The one process that
wins the scoring -> summarizing flip runs the selection in the same transaction and, after
commit, enqueues the summaries (or the publication when there is nothing to summarize).
"""
from __future__ import annotations

import logging

from sqlalchemy import func, select

from shared import names, passes
from shared.models import PASS_PUBLISHING, PASS_SCORING, PASS_SUMMARIZING, Paper, Pass, PassItem
from shared.tasking import Handler

from .matcher import compile_matcher
from .selection import select_digest

log = logging.getLogger(__name__)


def score_batch(rt, pass_id: int, paper_ids: list[str]) -> None:
    """Score the batch's unscored items, then try to close the scoring stage."""
    matcher = rt.memo("matcher", lambda: compile_matcher(rt.config))
    with rt.session() as s:
        p = s.get(Pass, pass_id)
        if p is None or p.status != PASS_SCORING:
            return
        if paper_ids:
            rows = s.execute(select(PassItem, Paper).join(Paper, Paper.id == PassItem.paper_id)
                             .where(PassItem.pass_id == pass_id, PassItem.paper_id.in_(paper_ids),
                                    PassItem.scored.is_(False))).all()
            for item, paper in rows:
                r = matcher.score(paper.title, paper.abstract, paper.authors, paper.categories)
                item.score, item.matched, item.match_details = r.score, r.matched, r.details
                item.excluded_by, item.scored = r.excluded_by, True
    close_scoring(rt, pass_id)


def close_scoring(rt, pass_id: int) -> None:
    work: list[tuple[str, dict]] = []
    with rt.session() as s:
        left = s.scalar(select(func.count()).select_from(PassItem)
                        .where(PassItem.pass_id == pass_id, PassItem.scored.is_(False)))
        if left:
            return
        p = s.get(Pass, pass_id)
        if not passes.advance(s, pass_id, PASS_SCORING, PASS_SUMMARIZING):
            return  # another scorer process won; it does the selection
        sel = select_digest(s, pass_id, rt.config, passes.summaries_off_reason(rt.config, rt.settings, p))
        p.candidates, p.selected = sel.candidates, len(sel.ranked)
        if sel.to_summarize:
            work = [(names.SUMMARIZE_PAPER, {"pass_id": pass_id, "paper_id": pid}) for pid in sel.to_summarize]
        else:
            passes.advance(s, pass_id, PASS_SUMMARIZING, PASS_PUBLISHING)
            work = [(names.PUBLISH_PASS, {"pass_id": pass_id})]
        log.info("pass %d: %d candidates, %d selected, %d to summarize",
                 pass_id, sel.candidates, len(sel.ranked), len(sel.to_summarize))
    for task, kwargs in work:
        rt.dispatch(task, **kwargs)


HANDLERS = {
    names.SCORE_BATCH: Handler(score_batch, max_retries=5),
}

"""Scorer stage logic (Celery-free; tasks.py and the embedded runner call these).

score_batch scores the not-yet-scored items of a batch (a redelivered batch re-scores nothing),
commits, then checks in the database whether the whole pass is scored. The one process that
wins the scoring -> summarizing flip runs the selection in the same transaction and, after
commit, enqueues the summaries (or the publication when there is nothing to summarize).

Interests (config.interests, off by default) add `weight x similarity` to the keyword score and
show up in match_details as {"term": "interests", "where": ["similarity"], "points": x}.
Policy when interests cannot be used (embeddings without an API key, no usable item, the
embeddings endpoint refusing the request with a non-retryable error): the pass is scored on
keywords only, a one-line warning is logged and recorded in the pass's note (`arxiv-bot status`).
A retryable endpoint failure (timeout, 429, 5xx) retries the batch instead.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from shared import names, passes
from shared.errors import ConfigError, PermanentError
from shared.arxiv import find_id
from shared.models import PASS_SCORING, Paper, Pass, PassItem
from shared.tasking import Handler

from .interests import build_interests, interest_bonus
from .matcher import compile_matcher
from .selection import select_digest

log = logging.getLogger(__name__)
INTEREST_TERM = "interests"


def paper_text(title: str | None, abstract: str | None) -> str:
    """The text compared with the interests: the same for papers and for interest ids."""
    return f"{title or ''}\n{abstract or ''}"


def _embedding_client(rt):
    import openai

    s = rt.settings
    return openai.OpenAI(base_url=s.llm_base_url, api_key=s.llm_api_key.strip(),
                         timeout=rt.config.ai_summary.timeout, max_retries=0)


def pass_interests(rt, pass_id: int) -> dict:
    """{"model": InterestModel | None, "warning": str | None} for this pass, built once per pass
    per process (arXiv ids are resolved from the papers table, which changes between passes).
    Never raises: a configuration that cannot work gives model None and a warning."""
    slot = rt.memo("scorer.interests", dict)
    if slot.get("pass_id") == pass_id:
        return slot
    cfg = rt.config.interests
    model, warning = None, None
    if cfg.enabled:
        ids = [pid for pid in map(find_id, cfg.items) if pid]
        with rt.session() as s:  # one query for every id; nothing is asked from arXiv
            known = {p.id: paper_text(p.title, p.abstract)
                     for p in s.scalars(select(Paper).where(Paper.id.in_(ids)))} if ids else {}
        unresolved = [pid for pid in ids if pid not in known]
        try:
            client = None
            if cfg.method == "embeddings":
                if not rt.settings.llm_api_key:
                    raise ConfigError(f"interests.method 'embeddings' needs an API key: set {rt.settings.llm_key_env}")
                client = _embedding_client(rt)
            model = build_interests(rt.config, known.get, client)
            if unresolved:
                warning = f"interests: arXiv ids not in the database, ignored: {', '.join(unresolved)}"
        except ConfigError as exc:
            warning = f"{exc}; scoring on keywords only"
        if warning:
            log.warning("pass %d: %s", pass_id, warning)
    slot.clear()
    slot.update(pass_id=pass_id, model=model, warning=warning)
    return slot


def _similarities(rt, pass_id: int, slot: dict, texts: list[str]) -> list[float]:
    """Similarities of `texts`, or zeros once the endpoint refused for good (see module doc)."""
    if slot["model"] is None or not texts:
        return [0.0] * len(texts)
    try:
        return slot["model"].similarities(texts)
    except PermanentError as exc:
        slot.update(model=None, warning=f"interests: {exc}; scoring on keywords only")
        log.warning("pass %d: %s", pass_id, slot["warning"])
        return [0.0] * len(texts)


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
            interests = pass_interests(rt, pass_id) if rt.config.interests.enabled and rows else None
            sims = (_similarities(rt, pass_id, interests, [paper_text(pp.title, pp.abstract) for _, pp in rows])
                    if interests else [0.0] * len(rows))
            weight = rt.config.interests.weight
            for (item, paper), sim in zip(rows, sims):
                r = matcher.score(paper.title, paper.abstract, paper.authors, paper.categories)
                score, matched, details = r.score, r.matched, r.details
                bonus = interest_bonus(sim, weight)
                if bonus > 0:  # added after the category weight; visible like any term
                    score = round(score + bonus, 4)
                    matched = [*matched, INTEREST_TERM]
                    details = [*details, {"term": INTEREST_TERM, "where": ["similarity"], "points": bonus,
                                          "similarity": sim}]
                item.score, item.matched, item.match_details = score, matched, details
                item.excluded_by, item.scored = r.excluded_by, True
    close_scoring(rt, pass_id)


def close_scoring(rt, pass_id: int) -> None:
    """If every item of the pass is scored, run the selection exactly once (the process that
    wins the conditional status UPDATE), then enqueue summaries or the publication."""
    # Before the transaction: building it may read the papers table (a second connection).
    warning = pass_interests(rt, pass_id)["warning"] if rt.config.interests.enabled else None

    def selection(s, p: Pass) -> list[str]:
        if warning and p.note is None:
            p.note = warning
        sel = select_digest(s, p.id, rt.config, passes.summaries_off_reason(rt.config, rt.settings, p),
                            rt.settings.llm_model)
        p.candidates, p.selected = sel.candidates, len(sel.ranked)
        log.info("pass %d: selection: %d candidates, %d selected, %d to summarize",
                 p.id, sel.candidates, len(sel.ranked), len(sel.to_summarize))
        return sel.to_summarize

    with rt.session() as s:
        work = passes.close_scoring(s, pass_id, selection)
    rt.send_all(work)


HANDLERS = [
    Handler(names.SCORE_BATCH, score_batch, soft_time_limit=300, time_limit=330, max_retries=5),
]

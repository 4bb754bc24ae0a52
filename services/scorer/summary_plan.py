"""The summaries a pass needs, planned once for all profiles (inside the scoring -> summarizing
flip, shared.passes.close_scoring).

One job per (paper, language), however many profiles picked the paper: ten readers selecting the
same paper in the same language cost one provider call; another language is another summary.
Jobs are ordered round-robin over the profiles by rank (every profile's first pick, then every
second pick, ...), and the daily token budget (shared.budget.plan) is granted in that order, so
when it cannot cover every pick it is shared fairly, not first come first served. A profile whose
every pick was refused gets a note saying so (`arxiv-bot status`). Every job carries its planned
prompt tokens (summary_jobs.input_tokens: max_input_tokens for a full text not read yet, the real
size of one read before), so the cost is visible before it is spent.
"""
from __future__ import annotations

import logging
from itertools import zip_longest

from sqlalchemy import select

from shared import budget
from shared.models import (ITEM_WANTS_SUMMARY, SOURCE_ABSTRACT, SUM_BUDGET, SUM_PENDING, SUMMARY_DONE, Paper,
                           PaperText, PassProfile, ProfileItem, Summary, SummaryJob, utcnow)

log = logging.getLogger(__name__)


def plan_jobs(s, pass_id: int, readers, ai, model: str) -> list[tuple[str, str]]:
    """Create the pass's summary jobs; returns the pending (paper id, language) pairs in order."""
    rows = s.execute(select(ProfileItem.profile, ProfileItem.paper_id, ProfileItem.language, Paper.version,
                            Paper.title, Paper.abstract)
                     .join(Paper, Paper.id == ProfileItem.paper_id)
                     .where(ProfileItem.pass_id == pass_id, ProfileItem.summary_state == ITEM_WANTS_SUMMARY)
                     .order_by(ProfileItem.rank)).all()
    by_profile: dict[str, list] = {}
    for r in rows:
        by_profile.setdefault(r.profile, []).append(r)
    order = [slug for slug in readers.slugs if slug in by_profile] + sorted(set(by_profile) - set(readers.slugs))
    jobs: dict[tuple[str, str], object] = {}
    wanted_by: dict[tuple[str, str], list[str]] = {}
    for round_ in zip_longest(*(by_profile[slug] for slug in order)):
        for r in round_:
            if r is None:
                continue
            key = (r.paper_id, r.language or ai.language)
            jobs.setdefault(key, r)
            wanted_by.setdefault(key, []).append(r.profile)
    if not jobs:
        return []
    known = _text_tokens(s, jobs)
    costs = _costs(s, jobs, ai, model, known)
    granted, refused, note = budget.plan(ai.daily_token_budget, budget.tokens_used_today(s) if
                                         ai.daily_token_budget is not None else 0, costs)
    refused_set = set(refused)
    now = utcnow()
    for priority, (key, r) in enumerate(jobs.items()):
        out = key in refused_set
        s.add(SummaryJob(pass_id=pass_id, paper_id=key[0], language=key[1], version=r.version, priority=priority,
                         state=SUM_BUDGET if out else SUM_PENDING, note=note if out else None, updated_at=now,
                         input_tokens=None if out else budget.input_cost(ai, r.title, r.abstract, known.get(key[0]))))
    if refused_set:
        _note_starved(s, pass_id, jobs, wanted_by, refused_set)
    return [k for k, _ in costs if k not in refused_set]


def _text_tokens(s, jobs: dict) -> dict[str, int]:
    """{paper id: size of what the model reads (text + abstract)} for papers whose text was read
    before (any language or model): the real size instead of the cap."""
    versions = {k[0]: r for k, r in jobs.items()}
    rows = s.execute(select(PaperText.paper_id, PaperText.version, PaperText.source, PaperText.tokens)
                     .where(PaperText.paper_id.in_(list(versions)))).all()
    out = {}
    for pid, version, source, tokens in rows:
        r = versions[pid]
        if version == r.version:
            abstract = budget.estimate_tokens(r.abstract)
            out[pid] = abstract if source == SOURCE_ABSTRACT else tokens + abstract
    return out


def _costs(s, jobs: dict, ai, model: str, known: dict) -> list[tuple[tuple[str, str], int]]:
    """[(job key, estimated tokens)] in job order; 0 when a finished summary will be reused (by
    paper version, model, language and input mode: a changed prompt is caught at call time)."""
    ids = list({k[0] for k in jobs})
    done = set()
    for i in range(0, len(ids), 1000):
        done.update(s.execute(select(Summary.paper_id, Summary.version, Summary.language)
                              .where(Summary.paper_id.in_(ids[i:i + 1000]), Summary.status == SUMMARY_DONE,
                                     Summary.model == model, Summary.input_mode == ai.input)).all())
    return [(key, 0 if (key[0], r.version, key[1]) in done else
             budget.summary_cost(ai, r.title, r.abstract, known.get(key[0]))) for key, r in jobs.items()]


def _note_starved(s, pass_id: int, jobs: dict, wanted_by: dict, refused: set) -> None:
    """Record which profiles got no summary at all from the budget, and why."""
    asked: dict[str, int] = {}
    got: dict[str, int] = {}
    for key, profiles in wanted_by.items():
        for slug in profiles:
            asked[slug] = asked.get(slug, 0) + 1
            if key not in refused:
                got[slug] = got.get(slug, 0) + 1
    for slug, n in asked.items():
        if got.get(slug, 0) == 0:
            row = s.get(PassProfile, (pass_id, slug))
            if row is not None:
                row.note = f"daily token budget reached: none of its {n} papers to summarize got a summary"
            log.info("pass %d profile %s: daily token budget reached before any of its %d summaries",
                     pass_id, slug, n)

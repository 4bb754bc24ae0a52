"""Interest similarity for the profiles that ask for it, with the papers' side computed once.

Interests (a profile's `interests`, off by default) add `weight x similarity` to the keyword score
and show up in match_details as {"term": "interests", "where": ["similarity"], "points": x}.
A paper's features are built once per pass and process, not per profile: its TF-IDF word counts
(one analyzer for every profile) or its embedding (one request per paper per pass, whatever the
number of profiles). Each profile then only compares them with its own interest texts.

Policy when a profile's interests cannot be used (embeddings without an API key, no usable item,
the embeddings endpoint refusing for good): that profile is scored on keywords only, and a one-
line warning is logged and recorded in its note. A retryable endpoint failure (timeout, 429, 5xx)
retries the scoring batch instead.
"""
from __future__ import annotations

import logging
from collections import Counter

from sqlalchemy import select

from shared.arxiv import find_id
from shared.errors import ConfigError
from shared.models import Paper

from .dayindex import DayIndex
from .interests import EmbeddingInterests, TfidfInterests, analyzer, build_interests, interest_bonus
from .selection import INTEREST_TERM

log = logging.getLogger(__name__)


def paper_text(title: str | None, abstract: str | None) -> str:
    """The text compared with the interests: the same for papers and for interest ids."""
    return f"{title or ''}\n{abstract or ''}"


def _embedding_client(rt):
    import openai

    s = rt.settings
    return openai.OpenAI(base_url=s.llm_base_url, api_key=s.llm_api_key.strip(),
                         timeout=rt.config.ai_summary.timeout, max_retries=0)


def profile_model(rt, pass_id: int, profile) -> tuple[object | None, str | None]:
    """(interest model or None, warning or None) for the profile, built once per pass and
    process (arXiv ids resolve from the papers table, which changes between passes)."""
    slot = rt.memo("scorer.interests", dict)
    if slot.get("pass_id") != pass_id:
        slot.clear()
        slot["pass_id"] = pass_id
    key = (profile.slug, profile.interests)
    if key in slot:
        return slot[key]
    cfg, model, warning = profile.interests, None, None
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
            client = rt.memo("scorer.embedding_client", lambda: _embedding_client(rt))
        model = build_interests(cfg, known.get, client)
        if unresolved:
            warning = f"interests: arXiv ids not in the database, ignored: {', '.join(unresolved)}"
    except ConfigError as exc:
        warning = f"{exc}; scoring on keywords only"
    if warning:
        log.warning("pass %d profile %s: %s", pass_id, profile.slug, warning)
    slot[key] = (model, warning)
    return slot[key]


def bonuses(day: DayIndex, profile, model) -> dict[int, list[dict]]:
    """{paper index: [its "interests" match detail]} for the profile's relevant papers with
    points > 0 (selection.select_profile's bonus). Raises PermanentError when the embeddings
    endpoint refused for good (caller: keywords only)."""
    if model is None:
        return {}
    idx = sorted(day.eligible(profile.categories, profile.announce_types)[0])
    if isinstance(model, TfidfInterests):
        counts = day_word_counts(day)
        sims = model.similarities_of_counts([counts[i] for i in idx])
    elif isinstance(model, EmbeddingInterests):
        import numpy as np

        vectors = _features(day, f"embeddings:{model.model}", model.embed)
        sims = model.similarities_of_vectors(np.asarray([vectors[i] for i in idx])) if idx else []
    else:
        sims = model.similarities([paper_text(day.papers[i].title, day.papers[i].abstract) for i in idx])
    out = {}
    for i, sim in zip(idx, sims):
        points = interest_bonus(sim, profile.interests.weight)
        if points > 0:
            out[i] = [{"term": INTEREST_TERM, "where": ["similarity"], "points": points, "similarity": sim}]
    return out


def day_word_counts(day: DayIndex) -> list[Counter]:
    """Each of the day's papers' word counts (title and abstract, the TF-IDF analyzer), built
    once per pass and process; the feedback ranker featurizes the same counts."""
    return _features(day, "tfidf", lambda texts: [Counter(analyzer()(t)) for t in texts])


def _features(day: DayIndex, kind: str, build):
    """Per-paper features of the whole day, built on the first profile that needs them."""
    if kind not in day.features:
        day.features[kind] = list(build([paper_text(p.title, p.abstract) for p in day.papers]))
    return day.features[kind]


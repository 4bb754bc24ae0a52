"""A profile's ratings in the scorer: the model trained on them, its points per paper, the
papers it hides.

- Hidden: a paper the reader rated "less like this" is never selected again for that profile
  (whatever its score, whether or not the model is active).
- Active: only once the profile has at least `feedback.min_ratings` ratings of EACH kind.
  Before that, no model exists and the profile ranks exactly as without feedback.
- Trained here, in the scorer, never in a web request; cached per process by profile and
  rating-set fingerprint (feedback_model.fingerprint): a pass retrains only the profiles whose
  ratings changed since this process last trained them. The day's features are built once per
  pass and process (day.features["feedback"], from the same word counts interests use) and
  shared by every profile.
- Points (feedback_model.points): feedback.weight x (2p - 1) for each eligible paper, as a
  match detail {"term": "liked" | "disliked", "where": ["ratings"], "points", "probability",
  "papers": [ids of the closest rated papers of that kind], "titles": [their titles]}.
  |points| below MIN_POINTS is left out (noise, not a reason).
"""
from __future__ import annotations

import logging
from collections import OrderedDict

from sqlalchemy import select

from shared.models import Paper

from .dayindex import DayIndex
from .feedback_model import FeedbackModel, featurize, fingerprint, points, train, word_counts
from .profile_interests import day_word_counts, paper_text

log = logging.getLogger(__name__)

LIKED, DISLIKED = "liked", "disliked"
MIN_POINTS = 0.05
MAX_MODELS = 4096   # models kept per process (a model is small: the weights of the words it saw)
TITLE_CHARS = 120


def hidden(ratings: list[tuple[str, str]]) -> frozenset[str]:
    """The papers the reader rated "less like this": never selected again."""
    return frozenset(pid for pid, rating in ratings if rating == "down")


def active(ratings: list[tuple[str, str]], min_ratings: int) -> bool:
    """True when the profile has at least `min_ratings` ratings of each kind."""
    ups = sum(1 for _, r in ratings if r == "up")
    return ups >= max(min_ratings, 1) and len(ratings) - ups >= max(min_ratings, 1)


def day_features(day: DayIndex):
    """The day's papers as feature rows (CSR), built on the first profile that needs them."""
    if "feedback" not in day.features:
        day.features["feedback"] = featurize(day_word_counts(day), [p.categories for p in day.papers])
    return day.features["feedback"]


def model_from_papers(papers: list[tuple[str, str, str, list[str]]], ratings: dict[str, str],
                      fp: str) -> FeedbackModel:
    """Train on rated papers given as (id, title, abstract, categories)."""
    feats = featurize(word_counts([paper_text(t, a) for _, t, a, _ in papers]), [c for *_, c in papers])
    return train(feats, [ratings[pid] == "up" for pid, *_ in papers], [pid for pid, *_ in papers],
                 [" ".join((t or "").split())[:TITLE_CHARS] for _, t, _, _ in papers], fp)


def profile_model(rt, profile, ratings: list[tuple[str, str]]) -> FeedbackModel | None:
    """The profile's model, or None while it is not active. Retrained only when the rating set
    changed since this process last trained it."""
    cfg = rt.config.feedback
    if cfg.weight <= 0 or not active(ratings, cfg.min_ratings):
        return None
    fp = fingerprint(ratings)
    cache: OrderedDict = rt.memo("scorer.feedback_models", OrderedDict)
    hit = cache.get(profile.slug)
    if hit is not None and hit.fingerprint == fp:
        cache.move_to_end(profile.slug)
        return hit
    wanted = dict(ratings)
    with rt.session() as s:
        rows = s.execute(select(Paper.id, Paper.title, Paper.abstract, Paper.categories)
                         .where(Paper.id.in_(list(wanted))).order_by(Paper.id)).all()
    papers = [(r.id, r.title, r.abstract, list(r.categories or [])) for r in rows]
    if not active([(pid, wanted[pid]) for pid, *_ in papers], cfg.min_ratings):
        return None  # rated papers deleted meanwhile (the ratings go with them)
    model = model_from_papers(papers, wanted, fp)
    log.info("profile %s: feedback model trained on %d ratings", profile.slug, len(papers))
    cache[profile.slug] = model
    while len(cache) > MAX_MODELS:
        cache.popitem(last=False)
    return model


def feedback_terms(day: DayIndex, profile, model: FeedbackModel | None, weight: float) -> dict[int, list[dict]]:
    """{paper index: [its "liked"/"disliked" match detail]} over the profile's eligible papers
    (selection.select_profile's bonus)."""
    if model is None:
        return {}
    idx = sorted(day.eligible(profile.categories, profile.announce_types)[0])
    if not idx:
        return {}
    feats = model.project(day_features(day)[idx])
    probs = model.probabilities(feats)
    out: dict[int, list[dict]] = {}
    chosen = [(row, i, points(float(p), weight), float(p)) for row, (i, p) in enumerate(zip(idx, probs))]
    chosen = [c for c in chosen if abs(c[2]) >= MIN_POINTS]
    reasons = model.explain(feats[[c[0] for c in chosen]], [c[2] > 0 for c in chosen],
                            [day.papers[c[1]].id for c in chosen]) if chosen else []
    for (row, i, pts, p), near in zip(chosen, reasons):
        out[i] = [{"term": LIKED if pts > 0 else DISLIKED, "where": ["ratings"], "points": pts,
                   "probability": round(p, 4), "papers": [pid for pid, _ in near],
                   "titles": [title for _, title in near]}]
    return out

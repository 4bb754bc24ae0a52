"""The ranker learned from ratings (services/scorer/profile_feedback.py), in the scorer's own
functions on the recorded 28 Nov 2024 day, with the rated papers read from a real SQLite
database: nothing changes before the profile has enough ratings of both kinds; after that the
model's points lift papers that match no keyword above min_score and sink papers that match
many, with the liked papers named; a paper rated "less like this" never comes back; the model is
trained once per rating set."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.fetcher.ingest import upsert_papers
from services.fetcher.rss import parse_rss
from services.scorer import handlers
from services.scorer.dayindex import DayIndex, DayPaper
from services.scorer.selection import select_profile
from shared.arxiv import effective_type
from shared.config import parse_config
from shared.db import make_engine
from shared.models import Base
from shared.profiles import load
from shared.runtime import Runtime
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DAY = ROOT / "tests/data/arxiv/rss/rss2_2024-11-28_all20archives_1504items.xml"
KEYWORDS = json.loads((ROOT / "config.json").read_text())["keywords"]
UPS = ["2411.17921", "2411.18287", "2411.18036", "2411.17757"]  # quant-ph papers no keyword matches
DOWNS = ["2411.17833", "2411.17866", "2411.18199"]              # distributed / federated training
MANY = "2411.17831"  # "Rapid Distributed Fine-tuning ...": five keywords, 5.5 points


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(runtime on a SQLite database holding the day's papers, the day's index, the profile)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('ranking') / 'db.sqlite'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    items = parse_rss(DAY.read_bytes()).items
    cfg = parse_config({"categories": ["cs.LG", "quant-ph"], "keywords": KEYWORDS, "min_score": 2.5,
                        "feedback": {"min_ratings": 3}})
    rt = Runtime(cfg, Settings.from_env(cfg, Path("config.json"), {"DATABASE_URL": url}), engine=engine)
    with rt.session() as s:
        upsert_papers(s, items)
    profile = load(cfg).profiles[0]
    union = list(profile.categories)
    day = DayIndex.build([DayPaper(i.id, i.title, i.abstract, i.authors, i.categories, effective_type(i, union),
                                   i.version) for i in items])
    yield rt, day, profile
    engine.dispose()


def digest(rt, day, profile, ratings):
    scored, bonus, _warning, hidden = handlers._score_one(rt, 0, day, profile, ratings)
    return select_profile(day, profile, scored, bonus, {}, hidden)


def test_too_few_ratings_rank_exactly_as_keywords_do(world):
    rt, day, profile = world
    plain = digest(rt, day, profile, [])
    few = [(u, "up") for u in UPS] + [(d, "down") for d in DOWNS[:2]]  # 4 up, 2 down: under 3 of each
    scored, bonus, _w, hidden = handlers._score_one(rt, 0, day, profile, few)
    assert bonus == {} and hidden == frozenset(DOWNS[:2])
    learned = select_profile(day, profile, scored, bonus, {}, hidden)
    expected = [(p.paper_id, p.score, p.match_details) for p in plain.picks if p.paper_id not in DOWNS[:2]]
    # The same order, scores and reasons; the hidden papers' places go to the next ones down.
    assert [(p.paper_id, p.score, p.match_details) for p in learned.picks][:len(expected)] == expected
    assert len(learned.picks) == len(plain.picks)
    assert {p.paper_id for p in plain.picks} & set(DOWNS[:2])  # they were there before


def test_ratings_lift_and_sink_and_explain(world):
    rt, day, profile = world
    plain = {p.paper_id: p for p in digest(rt, day, profile, []).picks}
    ratings = [(u, "up") for u in UPS] + [(d, "down") for d in DOWNS]
    picks = digest(rt, day, profile, ratings).picks
    by_id = {p.paper_id: p for p in picks}
    assert not set(DOWNS) & set(by_id)
    # Lifted: papers matching no keyword, not rated, now above min_score because of the likes.
    lifted = [p for p in picks if p.matched == ["liked"] and p.paper_id not in UPS]
    assert lifted and all(p.score >= profile.min_score for p in lifted)
    for p in lifted:
        (detail,) = p.match_details
        assert detail["term"] == "liked" and detail["points"] == p.score and detail["where"] == ["ratings"]
        assert detail["papers"] and set(detail["papers"]) <= set(UPS) and len(detail["titles"]) == len(detail["papers"])
        assert p.paper_id not in plain
    # Sunk: five keywords, but like the disliked papers.
    sunk = by_id[MANY]
    disliked = [d for d in sunk.match_details if d["term"] == "disliked"]
    assert disliked and disliked[0]["points"] < -1 and set(disliked[0]["papers"]) <= set(DOWNS)
    assert "disliked" not in sunk.matched and len(sunk.matched) == 5
    assert sunk.score == pytest.approx(plain[MANY].score + disliked[0]["points"])
    assert sunk.rank > plain[MANY].rank + 10
    json.dumps([p.match_details for p in picks])  # stored as JSON as they are


def test_a_disliked_paper_never_comes_back(world):
    rt, day, profile = world
    top = digest(rt, day, profile, []).picks[0].paper_id
    for ratings in ([(top, "down")], [(top, "down")] + [(u, "up") for u in UPS] + [(d, "down") for d in DOWNS]):
        assert top not in {p.paper_id for p in digest(rt, day, profile, ratings).picks}
    # Even as a replacement of a paper shown before (which the profile would otherwise get again).
    shown = {top: 0}
    scored, bonus, _w, hidden = handlers._score_one(rt, 0, day, profile, [(top, "down")])
    assert top not in {p.paper_id for p in select_profile(day, profile, scored, bonus, shown, hidden).picks}


def test_the_model_is_trained_once_per_rating_set(world):
    from services.scorer.profile_feedback import profile_model

    rt, _day, profile = world
    ratings = [(u, "up") for u in UPS] + [(d, "down") for d in DOWNS]
    first = profile_model(rt, profile, ratings)
    assert profile_model(rt, profile, list(reversed(ratings))) is first  # same set, any order
    changed = profile_model(rt, profile, ratings[:-1] + [(DOWNS[-1], "up")])
    assert changed is None  # now 5 up, 2 down: below the minimum, keywords only
    again = profile_model(rt, profile, ratings + [("2411.18146", "up")])
    assert again is not None and again is not first and again.fingerprint != first.fingerprint

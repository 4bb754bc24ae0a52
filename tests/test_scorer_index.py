"""The day index (services/scorer/dayindex.py + profile_scorer.py) gives exactly what the
matcher gives, for any profile: the same scores, matched terms, details and exclusions, on every
paper of the recorded 1504-item day. Profiles are generated (Hypothesis) from the day's own
vocabulary: words, phrases, hyphenated and case-sensitive terms, aliases, weights, followed
authors, category weights."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.fetcher.rss import parse_rss
from services.scorer.dayindex import DayIndex, DayPaper
from services.scorer.matcher import Matcher
from services.scorer.profile_scorer import details, score_profile
from shared.config import KeywordSpec, ProfileSpec, parse_config
from shared.profiles import resolve

DAY = Path(__file__).parent / "data" / "arxiv" / "rss" / "rss2_2024-11-28_all20archives_1504items.xml"


@pytest.fixture(scope="module")
def day() -> DayIndex:
    items = parse_rss(DAY.read_bytes()).items
    return DayIndex.build([DayPaper(i.id, i.title, i.abstract, i.authors, i.categories, i.announce_type or "new",
                                    i.version) for i in items])


@pytest.fixture(scope="module")
def vocabulary(day) -> dict:
    words, phrases, authors = set(), set(), set()
    for p in day.papers[:400]:
        ws = re.findall(r"[A-Za-z][A-Za-z-]{2,}", p.title)
        words.update(ws)
        phrases.update(" ".join(ws[i:i + 2]) for i in range(len(ws) - 1))
        authors.update(p.authors[:2])
    return {"words": sorted(words), "phrases": sorted(phrases)[:800], "authors": sorted(authors)[:300]}


def _check(day: DayIndex, profile) -> None:
    matcher = Matcher(profile.keywords, profile.exclude_keywords, profile.authors, profile.author_weight,
                      profile.category_weights)
    fast = score_profile(day, profile)
    for i, paper in enumerate(day.papers):
        slow = matcher.score(paper.title, paper.abstract, paper.authors, paper.categories)
        got = fast.get(i)
        if not slow.matched and not slow.excluded_by:
            assert got is None or (not got.terms and not got.authors and got.excluded_by is None), paper.id
            continue
        assert got is not None, paper.id
        assert got.excluded_by == slow.excluded_by, paper.id
        if slow.matched:
            assert got.score == slow.score, paper.id
            assert details(day, profile, got) == (slow.matched, slow.details), paper.id


def test_the_projects_own_profile(day):
    cfg = parse_config({"keywords": ["LLM", "RL", "mixture of experts", "K-means", "C++", "Decode",
                                     {"term": "GPU", "case_sensitive": True, "weight": 2, "aliases": ["CUDA"]}],
                        "exclude_keywords": ["survey", "review"], "authors": ["Yann LeCun", "Y. Bengio"],
                        "category_weights": {"cs.LG": 2.0, "cs": 1.5}})
    _check(day, resolve("p", ProfileSpec(), cfg))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_generated_profile_matches_the_matcher(day, vocabulary, data):
    word = st.sampled_from(vocabulary["words"])
    term = st.one_of(word, st.sampled_from(vocabulary["phrases"]), word.map(lambda w: w.upper()),
                     st.tuples(word, word).map("-".join))
    spec = st.builds(KeywordSpec, term=term, weight=st.sampled_from([0.5, 1.0, 2.0]),
                     aliases=st.lists(word, max_size=2).map(tuple), case_sensitive=st.booleans())
    cfg = parse_config({
        "keywords": [s.model_dump() for s in data.draw(st.lists(spec, min_size=1, max_size=12))],
        "exclude_keywords": data.draw(st.lists(word, max_size=3)),
        "authors": data.draw(st.lists(st.sampled_from(vocabulary["authors"]), max_size=3)),
        "category_weights": data.draw(st.dictionaries(st.sampled_from(["cs.LG", "cs", "math", "cs.CL"]),
                                                      st.sampled_from([0.5, 2.0]), max_size=2)),
    })
    _check(day, resolve("p", ProfileSpec(), cfg))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cats=st.lists(st.sampled_from(["cs.LG", "cs.AI", "cs.CL", "cs", "math", "math.GT", "stat.ML", "physics",
                                      "astro-ph", "astro-ph.CO", "q-bio.NC", "CS.lg", "eess"]), min_size=1, max_size=6),
       types=st.sets(st.sampled_from(["new", "cross", "replace", "replace-cross"]), min_size=1))
def test_eligible_papers_follow_the_arxiv_rules(day, cats, types):
    """The index's set operations give what shared.arxiv's relevant()/effective_type() give paper by paper."""
    from shared.arxiv import effective_type, relevant

    got, kinds = day.eligible(tuple(cats), tuple(sorted(types)))
    want = {i: effective_type(p, cats) for i, p in enumerate(day.papers) if relevant(p, cats)}
    want = {i: k for i, k in want.items() if k in types}
    assert kinds == want and got == set(want)

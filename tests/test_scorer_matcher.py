"""The scorer's keyword matcher on real titles and abstracts from the recorded feeds.

Quoted texts come from tests/data/arxiv/rss/rss2_2024-11-28_all20archives_1504items.xml (the
arXiv id is in a comment) unless said otherwise; the whole-day test parses that file with lxml.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from services.scorer.matcher import Matcher, compile_matcher, normalize_name
from shared.config import KeywordSpec, load_config, parse_config
from shared.errors import ConfigError

DATA = Path(__file__).parent / "data" / "arxiv"
DAY = DATA / "rss" / "rss2_2024-11-28_all20archives_1504items.xml"
ORIGINAL = Path(__file__).resolve().parent / "data" / "original-config.json"  # the original bot's config, verbatim
DC = "{http://purl.org/dc/elements/1.1/}"


@pytest.fixture(scope="module")
def day() -> dict[str, dict]:
    """Every item of the recorded day: id -> {title, abstract, authors, categories}."""
    papers = {}
    for item in etree.parse(str(DAY)).iter("item"):
        desc = item.findtext("description")
        m = re.match(r"arXiv:(\S+?)v\d+ Announce Type: \S+\s*\nAbstract: (.*)", desc, re.S)
        papers[m.group(1)] = {
            "title": item.findtext("title"), "abstract": m.group(2),
            "authors": [a.strip() for a in item.findtext(DC + "creator").split(",")],
            "categories": [c.text for c in item.iter("category")],
        }
    assert len(papers) == 1504
    return papers


@pytest.fixture(scope="module")
def original():
    config = load_config(ORIGINAL)
    return config, compile_matcher(config)


def score(matcher: Matcher, paper: dict):
    return matcher.score(paper["title"], paper["abstract"], paper["authors"], paper["categories"])


def where(result, term):
    return next((d["where"] for d in result.details if d["term"] == term), None)


def test_rl_is_a_word_not_part_of_world_control_url_overall(day):
    m = Matcher(["RL"])
    # 2411.17912 "Can LLMs plan paths in the real world?" ... "real-world path-planning"
    assert "world" in day["2411.17912"]["title"]
    # 2411.18235 "... Lyapunov-stable Neural Control" / "neural controllers"
    assert "Control" in day["2411.18235"]["title"]
    # 2411.18009 "The source code is publicly available at \url{https://github.com/...}"
    assert "\\url{" in day["2411.18009"]["abstract"]
    # 2411.17943 "improving language coherence, readability, and overall quality"
    assert "overall quality" in day["2411.17943"]["abstract"]
    for pid in ("2411.17912", "2411.18235", "2411.18009", "2411.17943"):
        assert score(m, day[pid]).matched == [], pid
    # 2411.18050 "RL for Mitigating Cascading Failures" ... "(PG-RL) framework", "guide the RL exploration"
    result = score(m, day["2411.18050"])
    assert result.matched == ["RL"] and where(result, "RL") == ["title", "abstract"]
    assert result.score == 1.5


def test_plurals_and_hyphenated_compounds_match(day):
    m = Matcher(["LLM"])
    # 2411.17912 "Can LLMs plan paths in the real world?" / "large language models (LLMs)"
    assert where(score(m, day["2411.17912"]), "LLM") == ["title", "abstract"]
    # 2411.18583 "... NLP Techniques and LLM-Based Retrieval-Augmented Generation"
    assert "title" in where(score(m, day["2411.18583"]), "LLM")
    # 2411.17967 "QuaLLM-Health: An Adaptation of an LLM-Based Framework ..." (QuaLLM is another word)
    assert where(score(Matcher(["QuaLLM"]), day["2411.17967"]), "QuaLLM") is not None


def test_decode_does_not_match_decoder_unless_aliased(day):
    # 2411.18090 "... Surface Code High-Level Decoder for Quantum Error Correction"; abstract has
    # "decoders", "decoder-Minimum", "decoding thresholds" but never "decode"/"decodes"/"decoded".
    paper = day["2411.18090"]
    assert score(Matcher(["Decode"]), paper).matched == []
    aliased = score(Matcher([KeywordSpec(term="Decode", aliases=("decoder",))]), paper)
    assert aliased.matched == ["Decode"] and where(aliased, "Decode") == ["title", "abstract"]
    # 2411.17917 "DECODE: Domain-aware Continual Domain Expansion for Motion Prediction"
    assert where(score(Matcher(["Decode"]), day["2411.17917"]), "Decode") == ["title", "abstract"]


def test_phrases_match_across_hyphens_and_spaces(day):
    # 2411.17792 "... leverages the mixture-of-experts (MoE) methodology in two steps"
    spaced = Matcher(["mixture of experts"])
    assert where(score(spaced, day["2411.17792"]), "mixture of experts") == ["abstract"]
    # 2411.18322 "Mixture of Experts in Image Classification: What's the Sweet Spot?"
    hyphened = Matcher(["mixture-of-experts"])
    assert "title" in where(score(hyphened, day["2411.18322"]), "mixture-of-experts")
    # A phrase never matches with other words in between or across punctuation.
    assert spaced.score("mixture of the experts", "").matched == []
    assert spaced.score("a mixture. Of experts", "").matched == []


def test_phrase_across_a_line_break_in_an_api_title():
    # API record 1710.08557: <title>On Neuromechanical Approaches for the Study of Biological Grasp and
    #   Manipulation</title>
    path = DATA / "api" / "legacy" / "2019_idlist_1710.08557_doi_jref_wrapped_title.xml"
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entry = etree.parse(str(path)).find("a:entry", ns)
    title, summary = entry.findtext("a:title", namespaces=ns), entry.findtext("a:summary", namespaces=ns)
    assert "Grasp and\n" in title
    result = Matcher(["grasp and manipulation", "underlying fundamental biological"]).score(title, summary)
    # summary: "... However, their underlying fundamental\nbiological vs. engineering mechanisms ..."
    assert result.matched == ["grasp and manipulation", "underlying fundamental biological"]
    assert where(result, "grasp and manipulation") == ["title", "abstract"]


def test_case_sensitive_acronyms(day):
    # 2411.17792 "leverages the mixture-of-experts (MoE) methodology"
    paper = day["2411.17792"]
    assert score(Matcher([KeywordSpec(term="MoE", case_sensitive=True)]), paper).matched == ["MoE"]
    assert score(Matcher([KeywordSpec(term="MOE", case_sensitive=True)]), paper).matched == []
    assert score(Matcher(["MOE"]), paper).matched == ["MOE"]  # default: any case
    # "LLMs" is the plural of a case-sensitive "LLM"; lower-case "llm" is not it.
    exact = Matcher([KeywordSpec(term="LLM", case_sensitive=True)])
    assert where(score(exact, day["2411.17912"]), "LLM") == ["title", "abstract"]
    assert exact.score("an llm-free method", "").matched == []


def test_metacharacters_are_literal(day):
    # 2411.18024 "... in both Matlab (M-SPARC) and C/C++ (SPARC)."
    assert score(Matcher(["C++"]), day["2411.18024"]).matched == ["C++"]
    # 2411.18065 "(e.g., FP8, 16, 32, and 64 in NVIDIA H100 Tensor Core)"; FP6/FP5 are other words
    fp = score(Matcher(["FP8", "FP4", "FP16"]), day["2411.18065"])
    assert fp.matched == ["FP8"]
    m = Matcher(["C++", "Q&A", "K-means", "a.b"])
    assert m.score("C code and CNN", "").matched == []
    assert m.score("Q & A over K means clustering of axb", "").matched == ["Q&A", "K-means"]
    assert m.score("kmeans", "").matched == []


def test_unicode_text_and_dashes():
    # No item of the recorded day is non-ASCII, so this covers the Unicode tokenizer directly.
    m = Matcher(["LLM", "Schrödinger bridge", "Mamba"])
    result = m.score("LLM\u2014based Schrödinger-Bridges", "Mambas, ÜberMamba and mamba\u2011style")
    assert result.matched == ["LLM", "Schrödinger bridge", "Mamba"]
    assert where(result, "Mamba") == ["abstract"]
    # Authors given as one "A, B" string (arXiv's dc:creator) and a single category string.
    assert Matcher([], authors=["Ali Tajer"], category_weights={"cs.LG": 2}).score(
        "t", "a", "Anmol Dwivedi, Ali Tajer", "cs.LG").score == 4.0


def test_review_excludes_review_and_reviews_but_not_reviewer(day):
    m = Matcher(["Framework", "Hardware"], excludes=["review"])
    # 2411.17943 "... gather in-depth feedback from expert reviewers ..."
    kept = score(m, day["2411.17943"])
    assert kept.excluded_by is None and kept.matched == ["Framework"]
    # 2411.17710 "Agent Centric Operating System -- a Comprehensive Review and Outlook ..."
    dropped = score(m, day["2411.17710"])
    assert dropped.excluded_by == "review"
    assert dropped.matched == ["Hardware"] and dropped.score == 1.0  # still explained
    # 2411.18147 "This survey reviews these recent developments" (abstract only)
    assert score(m, day["2411.18147"]).excluded_by == "review"
    # The first exclude term in config order is reported.
    both = Matcher([], excludes=["tutorial", "survey", "review"])
    assert score(both, day["2411.18147"]).excluded_by == "survey"


def test_weights_and_aliases(day):
    # 2411.18050 title "RL for ...", abstract "Physics-Guided Reinforcement Learning (PG-RL)"
    paper = day["2411.18050"]
    rl = KeywordSpec(term="Reinforcement Learning", aliases=("RL",), weight=2.0)
    result = score(Matcher([rl, KeywordSpec(term="Exploration", weight=0.5)]), paper)
    assert result.matched == ["Reinforcement Learning", "Exploration"]
    assert result.details == [
        {"term": "Reinforcement Learning", "where": ["title", "abstract"], "points": 3.0},
        {"term": "Exploration", "where": ["title", "abstract"], "points": 0.75},
    ]
    assert result.score == 3.75


def test_followed_authors(day):
    # 2411.18050 authors: Anmol Dwivedi, Ali Tajer, Santiago Paternain, Nurali Virani
    m = Matcher(["RL"], authors=["Ali Tajer", "A. Dwivedi", "Bob Tajer"], author_weight=2.0)
    result = score(m, day["2411.18050"])
    assert result.matched == ["RL", "Ali Tajer", "A. Dwivedi"]
    assert result.details[1:] == [{"term": "Ali Tajer", "where": ["authors"], "points": 2.0},
                                  {"term": "A. Dwivedi", "where": ["authors"], "points": 2.0}]
    assert result.score == 5.5
    # 2411.17748 lists "Benjamin R\'emy (LEMTA)": TeX accent and affiliation are ignored.
    assert "Benjamin R\\'emy (LEMTA)" in day["2411.17748"]["authors"]
    assert score(Matcher([], authors=["benjamin rémy"]), day["2411.17748"]).score == 2.0
    # 2411.17709 lists "Pawe{\l} Niedbalski".
    assert normalize_name("Pawe{\\l} Niedbalski") == normalize_name("Paweł Niedbalski") == ("pawel", "niedbalski")


def test_category_weights_use_the_primary_category(day):
    paper = day["2411.18050"]  # primary cs.LG, also cs.AI, cs.SY, eess.SY
    assert score(Matcher(["RL"], category_weights={"cs.LG": 2.0, "cs.AI": 0.1}), paper).score == 3.0
    archive = score(Matcher(["RL"], category_weights={"cs": 0.5}), paper)
    assert archive.score == 0.75 and archive.category_weight == 0.5
    assert archive.details[0]["points"] == 1.5  # points are before the category weight
    assert score(Matcher(["RL"], category_weights={"math.OC": 3.0}), paper).score == 1.5


@pytest.mark.parametrize("pid,expected,details", [
    # "Certified Training with Branch-and-Bound: A Case Study on Lyapunov-stable Neural Control":
    # Training (title+abstract) 1.5 + Framework 1.0. The substring bot also counted RL (Control),
    # Efficient ("efficiently") and Fast ("faster"): 6.0.
    ("2411.18235", 2.5, {"Training": ["title", "abstract"], "Framework": ["abstract"]}),
    # "CIM-Based Parallel Fully FFNN Surface Code High-Level Decoder ...": "Decoder" is not Decode;
    # "decoding", "fast, and scalable", "network-based", "hardware" in the abstract.
    ("2411.18090", 6.5, {"Parallel": ["title", "abstract"], "Decoding": ["abstract"], "Fast": ["abstract"],
                         "Network": ["abstract"], "Hardware": ["abstract"], "Scalable": ["abstract"]}),
    # "RL for Mitigating Cascading Failures ...": RL 1.5, "agent training", "framework".
    ("2411.18050", 3.5, {"RL": ["title", "abstract"], "Training": ["abstract"], "Framework": ["abstract"]}),
    # "DECODE: Domain-aware Continual Domain Expansion ...": "retraining" is not Training and
    # "hypernetwork" is not Network.
    ("2411.17917", 2.5, {"Decode": ["title", "abstract"], "Framework": ["abstract"]}),
])
def test_original_config_scores_known_papers(day, original, pid, expected, details):
    _, m = original
    result = score(m, day[pid])
    assert result.score == expected
    assert {d["term"]: d["where"] for d in result.details} == details
    assert result.excluded_by is None


def test_original_config_exclusions(day, original):
    _, m = original
    # 2411.17943: "as well as user surveys" -> excluded by "survey"; Framework still explained.
    result = score(m, day["2411.17943"])
    assert (result.excluded_by, result.matched, result.score) == ("survey", ["Framework"], 1.5)
    # 2411.18583 "Automated Literature Review Using NLP Techniques and LLM-Based ..."
    assert score(m, day["2411.18583"]).excluded_by == "review"


def test_compile_matcher_is_cached_per_config():
    a = parse_config({"keywords": ["LLM", {"term": "MoE", "case_sensitive": True}]})
    b = parse_config({"keywords": ["LLM", {"term": "MoE", "case_sensitive": True}]})
    c = parse_config({"keywords": ["LLM"], "category_weights": {"cs.LG": 2}})
    assert compile_matcher(a) is compile_matcher(b)
    assert compile_matcher(c) is not compile_matcher(a)
    assert compile_matcher(c).score("LLM", "", categories=["cs.LG"]).score == 3.0


def test_keyword_without_letters_is_a_config_error():
    with pytest.raises(ConfigError, match="'-' has no letters or digits"):
        compile_matcher(parse_config({"keywords": ["LLM", "-"]}))


def _independent_hit(term: str, text: str) -> bool:
    """A plain regex, written separately from the matcher: the term (spaces/hyphens as any
    separator) followed by at most one inflection suffix, with no letter or digit on either side."""
    body = r"[\s-]+".join(re.escape(w) for w in re.split(r"[\s-]+", term))
    forms = rf"{body}(?:s|es|ed|ing|d)?" + (rf"|{body[:-1]}ies" if term.endswith("y") else "")
    return re.search(rf"(?<![A-Za-z0-9])(?:{forms})(?![A-Za-z0-9])", text, re.I) is not None


def test_whole_day_every_match_is_on_word_boundaries(day, original):
    config, m = original
    terms = config.keyword_terms()
    matched_papers = 0
    for pid, paper in day.items():
        result = score(m, paper)
        matched_papers += bool(result.matched)
        for detail in result.details:
            for field in detail["where"]:
                assert _independent_hit(detail["term"], paper[field]), (pid, detail, field)
        # Completeness: an exact whole-word occurrence is always reported.
        for term in terms:
            for field in ("title", "abstract"):
                if re.search(rf"(?<![A-Za-z0-9]){re.escape(term)}(?![A-Za-z0-9])", paper[field], re.I):
                    assert field in (where(result, term) or []), (pid, term, field)
    assert 500 < matched_papers < 1504

"""TeX to text (shared.render.tex) on the recorded announcement day's real names, titles and
abstracts (tests/data/arxiv/rss/rss2_2024-11-28_all20archives_1504items.xml), and in the outputs
that show them (README, feeds, page); papers.json keeps the source."""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import feedparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.render.feeds import render_json_feed, render_papers_json, render_rss
from shared.render.html import render_page
from shared.render.markdown import render_readme
from shared.render.paper import matched_line
from shared.render.tex import markdown_math, to_text
from tests.test_render_outputs import META, context, make_paper

RECORDED = Path(__file__).parent / "data" / "arxiv" / "rss" / "rss2_2024-11-28_all20archives_1504items.xml"
# TeX left as source: a macro (\emph, \'e), a dollar opening a formula, a braced accent.
RAW_TEX = re.compile(r"\\[A-Za-z]{2,}|\\['\"`^~=.uvHck]|\$(?=[\\A-Za-z{(^_])|\{\\")


@functools.lru_cache(maxsize=1)
def recorded() -> dict:
    from services.fetcher.rss import parse_rss

    return {i.id: i for i in parse_rss(RECORDED.read_bytes()).items}


@pytest.mark.parametrize("source, text", [
    (r"Serdar Kad{\i}o\u{g}lu", "Serdar Kadıoğlu"),
    (r"Pablo G\'omez", "Pablo Gómez"),
    (r"Przemys{\l}aw Olbratowski", "Przemysław Olbratowski"),
    (r"Jaros{\l}aw \.Zygierewicz", "Jarosław Żygierewicz"),
    (r"Sofie Castro Holb{\ae}k", "Sofie Castro Holbæk"),
    (r"Rasmus Mar{\aa}k", "Rasmus Maråk"),
    (r"Gu{\dh}mundur K. Stef\'ansson", "Guðmundur K. Stefánsson"),
    (r"S. \v{S}timac", "S. Štimac"),
    (r"Jeppe Liborius Sj{\o}rup", "Jeppe Liborius Sjørup"),
    (r"Marta {\L}uksza", "Marta Łuksza"),
    (r"C\u{a}t\u{a}lin Pa\c{s}cu Moca", "Cătălin Paşcu Moca"),
    (r"\"Ozlem Tu\u{g}fe Demir", "Özlem Tuğfe Demir"),
    (r"Simone T\^etu", "Simone Têtu"),
    (r"Alejandro C\'ardenas-Avenda\~no", "Alejandro Cárdenas-Avendaño"),
])
def test_recorded_author_names(source, text):
    names = {a for item in recorded().values() for a in item.authors}
    assert source in names, "the name is really in the recorded feed"
    assert to_text(source) == text


@pytest.mark.parametrize("paper_id, field, expected", [
    ("2411.17792", "title", "H³Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs"),
    ("2411.17875", "title", "On an Erdős-Szekeres Game"),
    ("2411.18536", "title", "Chemical pressure tuning of competing orders in Ba₁₋ₓCaₓNi₂As₂"),
    ("2411.18016", "title", "On the small cap decoupling for the moment curve in ℝ³"),
    ("2411.18341", "title", "PHOENIX – Paderborn highly optimized and energy efficient solver for "
                            "two-dimensional nonlinear Schrödinger equations with integrated extensions"),
    ("2411.18380", "title", "SoK: Privacy Personalised – Mapping Personal Attributes & Preferences of "
                            "Privacy Mechanisms for Shoulder Surfing"),
    ("2411.18574", "title", "Generalized Fast Krasnosel'kiĭ-Mann Method with Preconditioners"),
    ("2411.18031", "title", "Pressure Dependence of Ultrafast Carrier Dynamics in Excitonic Insulator Ta₂NiSe₅"),
])
def test_recorded_titles(paper_id, field, expected):
    assert to_text(getattr(recorded()[paper_id], field)) == expected


def test_recorded_abstracts_read_as_text():
    papers = recorded()
    ikun = to_text(papers["2411.18250"].abstract)  # \textbf{50\%} and friends
    assert "IKUN" in ikun and "50%" in ikun and "95%" in ikun and "\\" not in ikun
    eeg = to_text(papers["2411.17705"].abstract)  # \href{url}{text}: the text stays
    assert "https://github.com/Kanyooo/EEG-DCNet" in eeg and "href" not in eeg
    game = to_text(papers["2411.17875"].abstract)
    assert "a ≥ b" in game and "b ∈ {2,3,4,5}" in game.replace("∈{", "∈ {")
    # A bare "%" is a percent sign (not a TeX comment eating the rest), "~" before a number
    # means "about", and a lone "$" is a dollar.
    bare = [p for p in papers.values() if re.search(r"(?<!\\)\d%", p.abstract or "") and "$" not in p.abstract]
    assert bare
    for p in bare[:20]:
        assert to_text(p.abstract).split()[-1] == p.abstract.split()[-1]  # nothing cut off at the end
    dollars = [p for p in papers.values() if re.search(r"\$\d", p.abstract or "")]
    assert any("$3" in to_text(p.abstract) or "$0.031" in to_text(p.abstract) for p in dollars)
    about = [p for p in papers.values() if " ~" in (p.abstract or "") and "$" not in p.abstract]
    assert about and all(" ~" in to_text(p.abstract) for p in about)


def test_every_recorded_title_and_name_converts_without_tex_left():
    """All 1504 items: titles and names never keep TeX source; plain ones come back unchanged."""
    for item in recorded().values():
        for source in (item.title, *item.authors):
            text = to_text(source)
            assert not RAW_TEX.search(text), (item.id, source, text)
            if not re.search(r"[\\$^_{}~]|--|``|''", source):
                assert text == source


def test_recorded_cs_abstracts_convert_without_tex_left():
    cs = [i for i in recorded().values() if any(c.startswith(("cs.", "stat.")) for c in i.categories)]
    assert len(cs) > 300
    for item in cs:
        text = to_text(item.abstract)
        assert not RAW_TEX.search(text), (item.id, text[:300])


def test_markdown_math_leaves_code_alone():
    md = "Cost $O(n^2)$ vs `$x^2$` and\n```\n$keep$\n```\nand $\\alpha_i$."
    assert markdown_math(md) == "Cost O(n²) vs `$x^2$` and\n```\n$keep$\n```\nand αᵢ."
    assert markdown_math("no math here, 5$") == "no math here, 5$"


def test_outputs_show_text_and_papers_json_keeps_the_source():
    p = make_paper(1, title=r"$H^3$Fusion for Schr\"odinger", authors=[r"Serdar Kad{\i}o\u{g}lu"],
                   abstract=r"We reach 50\% of $O(n^2)$ with \emph{tree} drafts.")
    p["summary"]["tldr"] = "Cost $O(n^2)$."
    readme = render_readme(context([p]))
    assert "H³Fusion for Schrödinger" in readme and "Kadıoğlu" in readme and "50% of O(n²) with tree" in readme
    assert "Cost O(n²)" in readme and not RAW_TEX.search(readme)
    page = render_page(context([p]), {}, [])
    assert "H³Fusion for Schrödinger" in page and "Kadıoğlu" in page and not RAW_TEX.search(page)
    rss = feedparser.parse(render_rss([p], META))
    assert rss.entries[0].title == "H³Fusion for Schrödinger" and rss.entries[0].author == "Serdar Kadıoğlu"
    item = json.loads(render_json_feed([p], META))["items"][0]
    assert item["title"] == "H³Fusion for Schrödinger" and "50% of O(n²)" in item["content_text"]
    assert json.loads(render_papers_json([p]))[0]["title"] == r"$H^3$Fusion for Schr\"odinger"  # the data


def test_matched_terms_read_cleanly():
    p = make_paper(1)
    assert matched_line(p) == "LLM, Inference · title"
    p["match_details"] = [{"term": "LLM", "where": ["abstract"]}, {"term": "Ada", "where": ["authors"]}]
    assert matched_line(p) == "LLM, Ada · authors"
    p["match_details"] = []
    assert matched_line(p) == "LLM, Inference"  # only the terms known


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200)
       | st.lists(st.sampled_from(["$", "\\", "{", "}", "^", "_", "~", "%", "&", "#", "'", "`", "-", "x", " ",
                                   "\\emph", "\\'", "\\href{", "\\url{", "\\(", "\\)", "2"]), max_size=40).map("".join))
def test_to_text_never_fails_and_leaves_no_placeholder(source):
    text = to_text(source)
    assert isinstance(text, str)
    assert not re.search("[\ue000-\ue002]", text)
    if not re.search(r"[\\$^_{}~]|--|``|''", source):
        assert text == source

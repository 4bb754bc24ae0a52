"""Parsers on arXiv's real recorded responses (tests/data/arxiv): RSS 2.0, Atom flavour, query
API (current and legacy backends), error channels and hostile input."""
from __future__ import annotations

import collections
import datetime as dt
import logging
import re
from pathlib import Path

import pytest

from services.fetcher.api import parse_api
from services.fetcher.records import split_authors
from services.fetcher.rss import parse_rss
from shared.arxiv import effective_type, in_set, relevant
from shared.errors import PermanentError

DATA = Path(__file__).parent / "data" / "arxiv"
RSS = DATA / "rss"
DAY = RSS / "rss2_2024-11-28_all20archives_1504items.xml"
QUANT = RSS / "rss2_2025-04-28_quant-ph_81items_all_announce_types.xml"


@pytest.fixture(scope="module")
def day():
    return parse_rss(DAY.read_bytes())


def by_id(result, arxiv_id):
    return next(i for i in result.items if i.id == arxiv_id)


def test_whole_day_counts_and_header(day):
    assert len(day.items) == 1504
    assert collections.Counter(i.announce_type for i in day.items) == {"new": 926, "cross": 9, "replace": 569}
    assert day.day == dt.date(2024, 11, 28)
    assert day.build_date == dt.datetime(2024, 11, 28, 14, 47, 20, tzinfo=dt.timezone.utc)
    assert day.title.startswith("astro-ph, cond-mat, physics")
    first = day.items[0]
    assert (first.id, first.version, first.primary_category) == ("2411.17700", 1, "cs.CY")
    assert first.authors == ["Jun Cui"]
    assert first.license == "http://creativecommons.org/licenses/by/4.0/"
    assert first.announced == dt.date(2024, 11, 28)  # midnight -0500 is still the 28th
    assert first.title.startswith("Exploring the Impact of Generative AI")


def test_multiline_abstract_kept_whole(day):
    item = by_id(day, "2411.17838")
    paragraphs = item.abstract.split("\n")
    assert len(paragraphs) == 2
    assert paragraphs[0].startswith("Time series data has become increasingly prevalent")
    assert paragraphs[1].startswith("The most popular TSCL algorithms")
    raw = DAY.read_text()
    tail = re.search(r"arXiv:2411\.17838v1.*?</description>", raw, re.S).group(0)
    last_words = tail[:-len("</description>")].split()[-6:]
    assert item.abstract.split()[-6:] == last_words  # nothing cut off at the end
    assert item.abstract == item.abstract.strip()


def test_affiliations_stripped_without_splitting_inside_parentheses(day):
    with_aff = [i for i in day.items if any("Araujo" in a for a in i.authors)][0]
    assert with_aff.authors[:2] == ["Aleteia Araujo", "Breno Costa"]
    assert all("(" not in a and ")" not in a for i in day.items for a in i.authors)
    assert split_authors("A B (Inst, Dept), C D, E (X (Y), Z)") == ["A B", "C D", "E"]


def test_tex_and_escapes_survive(day):
    item = by_id(day, "2411.17730")
    assert "\\begin{equation*}" in item.abstract and "$\\frac{1}{3}<s<1$" in item.abstract
    assert any("R\\'emy" in a for i in day.items for a in i.authors)


def test_quant_ph_all_four_types():
    feed = parse_rss(QUANT.read_bytes())
    assert len(feed.items) == 81
    assert collections.Counter(i.announce_type for i in feed.items) == {
        "new": 40, "cross": 10, "replace": 22, "replace-cross": 9}
    for item in feed.items:  # the feed's own types equal what we compute for quant-ph
        assert effective_type(item, ["quant-ph"]) == item.announce_type
    assert feed.day == dt.date(2025, 4, 28)
    assert sum(1 for i in feed.items if i.doi) == 10
    assert sum(1 for i in feed.items if i.journal_ref) == 9


def test_atom_flavour():
    feed = parse_rss((RSS / "partial" / "TRIMMED_atom_2026-09-25_cs.LG_3entries_abstracts_cut.xml").read_bytes())
    assert [(i.id, i.version, i.announce_type) for i in feed.items] == [
        ("2609.28553", 1, "new"), ("2402.10149", 3, "cross"), ("2401.08875", 3, "replace")]
    first = feed.items[0]
    assert first.categories == ["cs.LG", "cs.AI"]
    assert first.doi == "10.1109/MAPR72750.2026.11685822"
    assert first.journal_ref.startswith("2026 International Conference on Multimedia")
    assert first.abstract.startswith("Drug toxicity prediction is critical")
    assert feed.items[1].primary_category == "hep-ph"
    assert feed.day == dt.date(2026, 9, 25)


def test_error_channel_is_permanent_with_arxivs_message():
    with pytest.raises(PermanentError) as err:
        parse_rss((RSS / "rss2_2024-11-28_error_bad_archive_astroph.xml").read_bytes())
    assert "Bad archive 'astroph'" in str(err.value) and "\n" not in str(err.value)


def test_empty_feed_is_valid():
    feed = parse_rss((RSS / "rss2_2024-11-28_test_archive_empty.xml").read_bytes())
    assert feed.items == [] and feed.day == dt.date(2024, 11, 28) and feed.title == "test updates on arXiv.org"


def test_truncated_xml_says_so():
    data = DAY.read_bytes()
    with pytest.raises(PermanentError, match="truncated or malformed XML"):
        parse_rss(data[: len(data) // 3])


def test_html_page_rejected():
    with pytest.raises(PermanentError, match="HTML page"):
        parse_rss(b"<!DOCTYPE html>\n<html><body><h1>Service Unavailable</h1></body></html>")


def test_non_feed_rejected():
    with pytest.raises(PermanentError, match="not an RSS/Atom feed"):
        parse_rss(b"<?xml version='1.0'?><OAI-PMH><error>x</error></OAI-PMH>")


def test_billion_laughs_rejected_without_expansion():
    ents = "".join(f'<!ENTITY lol{i} "{"&lol%d;" % (i - 1) * 10}">' for i in range(1, 10))
    bomb = (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY lol0 "lol">{ents}]>'
            '<rss version="2.0"><channel><title>&lol9;</title></channel></rss>').encode()
    with pytest.raises(PermanentError, match="DTD") as err:
        parse_rss(bomb)
    assert len(str(err.value)) < 200  # nothing expanded into the message


def test_broken_item_skipped_rest_parses(caplog):
    data = (RSS / "rss2_2025-04-28_quant-ph_81items_all_announce_types.xml").read_text()
    broken = data.replace("Announce Type: new \nAbstract:", "Abstract:", 1)  # first item loses its header
    with caplog.at_level(logging.WARNING):
        feed = parse_rss(broken.encode())
    assert len(feed.items) == 80
    assert any("skipping broken item" in r.getMessage() for r in caplog.records)


def test_in_set_relevant_and_effective_type(day):
    assert in_set("cs.LG", ["cs"]) and in_set("CS.lg", ["cs.LG"]) and not in_set("math-ph", ["math"])
    assert not in_set("stat.ML", ["cs.LG"])
    cats = ["cs.AI", "cs.LG"]
    item = by_id(day, "2411.17700")  # cs.CY only
    assert not relevant(item, cats)
    crossed = [i for i in day.items if i.announce_type == "new" and i.primary_category == "cs.CL"
               and "cs.LG" in i.categories][0]
    assert effective_type(crossed, ["cs.LG"]) == "cross"
    assert effective_type(crossed, ["cs.LG", "cs.CL"]) == "new"
    replaced = [i for i in day.items if i.announce_type == "replace" and i.primary_category == "cs.CL"][0]
    assert effective_type(replaced, ["cs.CL"]) == "replace"
    assert effective_type(replaced, ["math"]) == "replace-cross"


# -- query API ---------------------------------------------------------------------------------
API = DATA / "api"


def test_api_search_page_current_backend():
    page = parse_api((API / "current" / "search_all-testing_start0_max100.xml").read_bytes())
    assert (page.total, page.start, page.per_page, len(page.items)) == (214881, 0, 100, 100)
    assert max(i.version for i in page.items) == 9
    assert sum(1 for i in page.items if i.version >= 2) == 36
    assert {"cs/0503050", "hep-ph/0301050", "gr-qc/0103067"} <= {i.id for i in page.items}
    assert sum(1 for i in page.items if i.doi) == 32
    assert all(i.published and i.updated and i.categories for i in page.items)


def test_api_pages_are_slices():
    full = parse_api((API / "current" / "search_all-testing_start0_max100.xml").read_bytes())
    page = parse_api((API / "current" / "search_all-testing_start20_max10.xml").read_bytes())
    assert page.start == 20 and [i.id for i in page.items] == [i.id for i in full.items[20:30]]


def test_api_old_id_affiliations_and_msc_codes():
    item = parse_api((API / "current" / "idlist_astro-ph_0601001_oldid_affiliations.xml").read_bytes()).items[0]
    assert (item.id, item.version, item.categories) == ("astro-ph/0601001", 1, ["astro-ph"])
    assert item.authors == ["Andrew Gould", "Susan Dorsher", "B. Scott Gaudi", "Andrzej Udalski"]
    assert item.journal_ref == "ActaAstron.56:1-50,2006" and item.comment.startswith("62 pages")
    perelman = parse_api((API / "legacy" / "2019_idlist_math_0211159_oldid_msc_category.xml").read_bytes()).items[0]
    assert (perelman.id, perelman.primary_category, perelman.categories) == ("math/0211159", "math.DG", ["math.DG"])
    assert perelman.abstract.startswith("We present a monotonic expression") and "\n" not in perelman.abstract
    assert perelman.abstract.endswith("lower curvature bound.")


def test_api_legacy_wrapped_title_doi_and_versions():
    item = parse_api((API / "legacy" / "2016_idlist_1111.2011v2_doi_jref_v2.xml").read_bytes()).items[0]
    assert (item.id, item.version) == ("1111.2011", 2)
    assert item.title == "Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large Connectivity Limit"
    assert item.doi == "10.1103/PhysRevB.85.115117" and item.journal_ref == "Phys. Rev. B 85, 115117 (2012)"
    assert item.published.date() == dt.date(2011, 11, 8) and item.updated.date() == dt.date(2012, 4, 2)
    page = parse_api((API / "legacy" / "2019_idlist_astro-ph_9812133_oldid_32authors_affiliations.xml").read_bytes())
    assert len(page.items[0].authors) == 32 and page.items[0].authors[0] == "S. Perlmutter"


def test_api_zero_results_and_one_of_two():
    assert parse_api((API / "current" / "idlist_0808.05394_zero_results.xml").read_bytes()).items == []
    two = parse_api((API / "current" / "idlist_0808.05394_and_1707.08567_one_of_two.xml").read_bytes())
    assert [i.id for i in two.items] == ["1707.08567"] and "Dirk Wübben" in two.items[0].authors


@pytest.mark.parametrize("name,message", [
    ("current/idlist_abc_error_http400.xml", "incorrect id format for abc"),
    ("legacy/2019_idlist_INVALIDID_error_http400.xml", "incorrect id format for INVALIDID"),
])
def test_api_error_feed_is_permanent(name, message):
    with pytest.raises(PermanentError) as err:
        parse_api((API / name).read_bytes())
    assert str(err.value) == f"arXiv API error: {message}"

"""The arXiv stand-in's announce types come from the recordings, not from the code under test.

Every recorded feed states each paper's type relative to the set it was requested for; the
stand-in reads the day's event back from that (tests/standins/arxiv_feeds.py) and serves other
sets by arXiv's documented rule, written there independently of services/fetcher. These tests
cross-check that rule against every recorded feed and the documented per-archive facts, so the
end-to-end tests (which compare the fetcher's types with what the stand-in serves) can see a
wrong rule in the fetcher.
"""
from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from tests.standins import arxiv_feeds as feeds

RSS = feeds.DATA / "rss"
RECORDED = {  # file: Counter of (recorded type, event)
    "rss2_2024-11-28_all20archives_1504items.xml": {
        ("new", feeds.SUBMITTED): 926, ("replace", feeds.REPLACED): 569, ("cross", feeds.CROSS_LISTED): 9},
    "rss2_2025-04-28_quant-ph_81items_all_announce_types.xml": {
        ("new", feeds.SUBMITTED): 40, ("cross", feeds.SUBMITTED): 10, ("replace", feeds.REPLACED): 22,
        ("replace-cross", feeds.REPLACED): 9},
    "partial/TRIMMED_rss2_2026-09-24_cs.LG+cs.AI+cs.CL+stat.ML_4items.xml": {
        ("new", feeds.SUBMITTED): 2, ("cross", feeds.CROSS_LISTED): 1, ("replace", feeds.REPLACED): 1},
}


def served(day: feeds.Day, q: str) -> dict[str, str]:
    """{id: type} of the feed the stand-in serves for `q` (parsed from its bytes)."""
    body = feeds.render_feed(day, q).decode()
    return dict(re.findall(r"arXiv:(\S+?)v\d+ Announce Type: (\S+) ", body))


def recorded_types(path: Path) -> dict[str, str]:
    """{id: type} straight from a recorded file's text."""
    return dict(re.findall(r"arXiv:(\S+?)v\d+ Announce Type: (\S+) ", path.read_text()))


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_every_recorded_feed_follows_the_documented_rule(name):
    """No recorded item contradicts the rule (load_day raises), and the rule applied to the
    recorded event for the recorded set gives back exactly the recorded type."""
    day = feeds.load_day(RSS / name)
    assert Counter((it.type, it.event) for it in day.items) == RECORDED[name]
    for it in day.items:
        assert feeds.LISTING[(it.event, feeds.listed_in(it.categories[0], day.requested))] == it.type, it.id


def test_the_recorded_request_is_served_as_recorded():
    day = feeds.load_day(feeds.DEFAULT_DAY)
    assert len(day.requested) == 20 and "test" not in day.requested
    q = "+".join(sorted(day.requested))
    assert served(day, q) == recorded_types(feeds.DEFAULT_DAY)
    quant = RSS / "rss2_2025-04-28_quant-ph_81items_all_announce_types.xml"
    assert served(feeds.load_day(quant), "quant-ph") == recorded_types(quant)


def test_a_whole_archive_request_keeps_the_recorded_types():
    """cs alone: every listed cs paper has its primary inside (new/replace) unless arXiv recorded
    it as a cross; the 20-archive recording has every primary inside, so nothing else changes."""
    day = feeds.load_day(feeds.DEFAULT_DAY)
    recorded = recorded_types(feeds.DEFAULT_DAY)
    cs = served(day, "cs")
    assert cs and all(cs[i] == recorded[i] for i in cs
                      if next(it for it in day.items if it.id == i).categories[0].startswith("cs."))


def test_the_documented_per_archive_facts():
    """tests/data/arxiv/README.md: in a feed for cs.AI+cs.LG a cs.LG paper cross-listed to cs.AI
    is new, in the cs.AI feed alone it is cross; replacements likewise become replace-cross; an
    older paper's new cross-listing is a cross everywhere; each paper is listed once per feed."""
    day = feeds.load_day(feeds.DEFAULT_DAY)
    lg_to_ai = next(it for it in day.items if it.type == "new" and it.categories[0] == "cs.LG"
                    and "cs.AI" in it.categories)
    assert served(day, "cs.AI+cs.LG")[lg_to_ai.id] == "new"
    assert served(day, "cs.AI")[lg_to_ai.id] == "cross"
    assert served(day, "CS.ai")[lg_to_ai.id] == "cross"  # arXiv's URLs are case-insensitive
    replaced = next(it for it in day.items
                    if it.type == "replace" and len({c.split(".")[0] for c in it.categories}) > 1)
    other = next(c for c in replaced.categories[1:] if c.split(".")[0] != replaced.categories[0].split(".")[0])
    assert served(day, replaced.categories[0])[replaced.id] == "replace"
    assert served(day, other)[replaced.id] == "replace-cross"
    for it in (it for it in day.items if it.event == feeds.CROSS_LISTED):
        for cat in it.categories:
            assert served(day, cat)[it.id] == "cross"
    body = feeds.render_feed(day, "cs.AI+cs.LG+cs.CL").decode()
    ids = re.findall(r"<guid[^>]*>oai:arXiv.org:(\S+?)v\d+</guid>", body)
    assert ids and len(ids) == len(set(ids))


def test_atom_recording_agrees_with_the_rule():
    """The Atom flavour (cs.LG alone): its types, read without the stand-in, follow the table."""
    root = etree.fromstring((RSS / "partial" / "TRIMMED_atom_2026-09-25_cs.LG_3entries_abstracts_cut.xml").read_bytes())
    atom, arx = "{http://www.w3.org/2005/Atom}", "{http://arxiv.org/schemas/atom}"
    seen = []
    for entry in root.iter(f"{atom}entry"):
        kind = entry.findtext(f"{arx}announce_type")
        version = int(re.search(r"v(\d+)$", entry.findtext(f"{atom}id")).group(1))
        primary = entry.find(f"{atom}category").get("term")
        event = feeds.event_of(kind, feeds.listed_in(primary, {"cs.lg"}), version)
        seen.append((kind, event))
    assert seen == [("new", feeds.SUBMITTED), ("cross", feeds.CROSS_LISTED), ("replace", feeds.REPLACED)]


def test_a_contradicting_recording_is_refused():
    with pytest.raises(ValueError, match="contradicts"):
        feeds.event_of("new", False, 1)        # a new paper whose primary is not in the feed
    with pytest.raises(ValueError, match="contradicts"):
        feeds.event_of("replace", True, 1)     # a replacement of a first version
    with pytest.raises(ValueError, match="contradicts"):
        feeds.event_of("replace-cross", True, 2)


def test_the_standin_does_not_use_the_code_under_test():
    """The stand-in imports nothing of the product (services/, shared/): its rule is its own."""
    for path in (Path(feeds.__file__).parent).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.split(".")[0] in ("services", "shared", "web", "arxiv_bot")], \
                (path.name, names)

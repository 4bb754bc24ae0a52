"""Hostile feed content (issue 17 points 2 and 7): identifiers, categories and control characters.

- Property (Hypothesis): generated hostile descriptions, ids, versions, categories, DOIs and
  titles go through the real parser (services/fetcher/rss.py) and the real renderers (README,
  RSS, Atom, JSON Feed, papers.json, the page): every id that comes out matches arXiv's strict
  pattern, no output has a live image or a javascript: link.
- End to end: the arXiv stand-in serves items with hostile ids and categories, and items with
  control characters (raw, as &#N; references, C1), to a real `arxiv-bot run`: the day is kept,
  the hostile items are skipped or repaired with a warning, and nothing hostile is published.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from xml.sax.saxutils import escape

import feedparser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree, html as lxml_html
from markdown_it import MarkdownIt

from services.fetcher.rss import parse_rss
from shared import arxiv
from shared.render.feeds import render_atom, render_json_feed, render_papers_json, render_rss
from shared.render.html import render_page
from shared.render.markdown import render_readme
from tests.faults import make_stack
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin
from tests.test_render_outputs import META, context, make_paper

STRICT_ID = re.compile(r"^(?:\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Za-z][A-Za-z-]*)?/\d{7})$")
CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
PIECES = ["2411.17700", "hep-th/9901001", "v1", "v", "v0", "v99999", ")", "(", "![x](http://evil/x.png)",
          "[y](javascript:alert(1))", "<img src=x onerror=alert(1)>", "javascript:alert(1)", '"', "'", "<", ">",
          "&", "/", "../", "?q=1", "#f", " ", "%2F", "cs.LG", "data:text/html,x", "\\", "`", "\u202e", "ＡＢ"]
hostile = st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=6).map("".join)


def _item(arxiv_id: str, version: str, kind: str, title: str, cats: list[str], doi: str, abstract: str) -> str:
    desc = f"arXiv:{arxiv_id}{version} Announce Type: {kind} \nAbstract: {abstract}"
    return ("<item><title>" + escape(title) + "</title><link>https://arxiv.org/abs/x</link>"
            "<description>" + escape(desc) + "</description><guid isPermaLink=\"false\">g</guid>"
            + "".join(f"<category>{escape(c)}</category>" for c in cats)
            + f"<pubDate>Thu, 28 Nov 2024 00:00:00 -0500</pubDate><arxiv:announce_type>{escape(kind)}"
              "</arxiv:announce_type><arxiv:DOI>" + escape(doi) + "</arxiv:DOI>"
              "<dc:creator>Ada Lovelace, Eve</dc:creator></item>")


def _feed(items: list[str]) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<rss xmlns:arxiv="http://arxiv.org/schemas/atom" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0"><channel><title>cs.LG updates on arXiv.org'
            '</title><pubDate>Thu, 28 Nov 2024 00:00:00 -0500</pubDate>' + "".join(items)
            + "</channel></rss>").encode()


def assert_no_live_hostile_markup(outputs: dict[str, str]) -> None:
    """No image and no javascript: (or other non-http) link anywhere, README rendered to HTML."""
    pages = {name: text for name, text in outputs.items() if name.endswith((".html", ".md"))}
    pages["README.md"] = MarkdownIt("commonmark", {"html": True}).render(outputs["README.md"])
    for name, text in pages.items():
        tree = lxml_html.fromstring(text or "<p></p>")
        assert not tree.xpath("//img"), name
        for href in tree.xpath("//a/@href"):
            assert re.match(r"^(https?://|/|#|\?|\.|[a-z0-9-]+\.(xml|json|md|html))", href.strip(), re.I) \
                and "javascript:" not in href.lower(), (name, href)
    for name in ("feed.xml", "atom.xml"):
        feed = feedparser.parse(outputs[name].encode())
        assert not feed.bozo, name
        for entry in feed.entries:
            for link in entry.get("links", []):
                assert link["href"].startswith("https://arxiv.org/"), (name, link)
        bodies = [el.text or "" for el in etree.fromstring(outputs[name].encode()).iter() if isinstance(el.tag, str)
                  and etree.QName(el).localname in ("description", "encoded", "content", "summary")]
        for body in bodies:
            tree = lxml_html.fromstring(body or "<p></p>")
            assert not tree.xpath("//img") and all(h.startswith("https://arxiv.org/") or "feedback" in h
                                                    for h in tree.xpath("//a/@href")), (name, body)
    for p in json.loads(outputs["papers.json"]):
        assert STRICT_ID.match(p["id"]), p["id"]
        assert p["abs_url"] == f"https://arxiv.org/abs/{p['id']}"
        assert p["pdf_url"] == f"https://arxiv.org/pdf/{p['id']}v{p['version']}"
        assert all(arxiv.is_category(c) for c in p["categories"])
    for item in json.loads(outputs["feed.json"])["items"]:
        assert item.get("url", "https://arxiv.org/").startswith("https://arxiv.org/")
        assert not lxml_html.fromstring(item["content_html"]).xpath("//img")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(st.tuples(hostile | st.sampled_from(["2411.17700", "math.GT/0309136"]),
                                hostile | st.sampled_from(["v1", "v2"]), st.sampled_from(["new", "cross", "x<y"]),
                                hostile, st.lists(hostile | st.just("cs.LG"), min_size=1, max_size=3),
                                hostile | st.just("10.1000/x.y"), hostile), min_size=1, max_size=4))
def test_hostile_items_through_the_parser_and_every_renderer(items):
    result = parse_rss(_feed([_item(*it) for it in items]))
    for item in result.items:  # what the parser lets through is arXiv's vocabulary, nothing else
        assert STRICT_ID.match(item.id) and isinstance(item.version, int) and 1 <= item.version <= 9999
        assert item.categories and all(arxiv.is_category(c) for c in item.categories)
        assert item.doi is None or re.match(r"^10\.\d{4,9}/\S+", item.doi)
        assert not CONTROLS.search(item.title + item.abstract)
    papers = []
    for n, item in enumerate(result.items, 1):
        p = make_paper(n, title=item.title, abstract=item.abstract, authors=item.authors or ["A"],
                       cats=tuple(item.categories))
        p.update(id=item.id, version=item.version, doi=item.doi, abs_url=arxiv.abs_url(item.id),
                 pdf_url=arxiv.pdf_url(item.id, item.version))
        papers.append(p)
    ctx = context(papers)
    outputs = {"README.md": render_readme(ctx), "feed.xml": render_rss(papers, META).decode(),
               "atom.xml": render_atom(papers, META).decode(), "feed.json": render_json_feed(papers, META).decode(),
               "papers.json": render_papers_json(papers).decode(),
               "index.html": render_page(ctx, {}, [dt.date(2024, 11, 28)])}
    assert_no_live_hostile_markup(outputs)


def _edit(pattern: bytes, replacement: bytes, count: int = 1):
    def fn(item: bytes) -> bytes:
        edited = re.sub(pattern, replacement, item, count=count, flags=re.S)
        assert edited != item, pattern
        return edited
    return fn


def _papers(sqlite_url: str) -> dict[str, tuple]:
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        return {r[0]: r[1:] for r in db.execute("SELECT id, title, abstract, authors, categories, doi FROM papers")}


def _outputs(out) -> dict[str, str]:
    return {name: (out / name).read_text() for name in
            ("README.md", "feed.xml", "atom.xml", "feed.json", "papers.json", "index.html")}


def test_hostile_ids_and_control_characters_in_a_real_run(tmp_path, sqlite_url):
    # Items of the recorded day whose primary category is in the configured set; "zebrafinch" in
    # an edited title makes it rank at the top, so the edits reach every output.
    boost = [{"term": "zebrafinch", "weight": 100}]
    with ArxivStandin() as arxiv_standin, LLMStandin() as llm:
        ids = [i.id for i in arxiv_standin.day.items if i.categories[0] in ("cs.AI", "cs.LG", "cs.CL")][:6]
        a, b, c, d, e, f = ids
        # Point 2: a hostile id (the example) and a hostile version: skipped with a warning.
        arxiv_standin.edit_item(a, _edit(rb"arXiv:[^ ]+ Announce",
                                         b"arXiv:2411.90007)![x](http://evil/x.png)...v1 Announce"))
        arxiv_standin.edit_item(b, _edit(rb"(arXiv:[0-9.]+)v\d+", rb"\1v1&lt;img src=x&gt;"))
        # Hostile categories and DOI next to valid ones: the fields are dropped, the item kept.
        arxiv_standin.edit_item(c, _edit(rb"<title>", b'<category>cs.LG"&gt;&lt;img src=x&gt;</category>'
                                         b"<category>javascript:alert(1)</category>"
                                         b"<arxiv:DOI>10.1/x\"&gt;&lt;script&gt;</arxiv:DOI><title>zebrafinch "
                                         b"![x](http://evil/x.png) [y](javascript:alert(1)) "))
        # Point 7: control characters, raw (illegal in XML), as references, and C1 (legal XML).
        arxiv_standin.edit_item(d, _edit(rb"<title>", b"<title>zebrafinch \x1b[31mred\x1b[0m\x07 \x01"))
        arxiv_standin.edit_item(e, _edit(rb"Abstract: ", b"Abstract: &#27;[2J&#x1b;]0;pwned&#7; \x0czebrafinch "))
        arxiv_standin.edit_item(f, _edit(rb"<dc:creator>", "<dc:creator>Mallory\u009b2J\u007f, ".encode()))
        stack = make_stack(tmp_path, sqlite_url, arxiv_standin, llm, keywords=boost)
        stack.env.update(LLM_API_KEY="", LOG_LEVEL="WARNING")
        res = stack.cli("run", "--no-summaries", timeout=300)
    assert "published 2024-11-28" in res.stdout, res.stdout
    stored = _papers(sqlite_url)
    assert a not in stored and b not in stored  # hostile ids: skipped ...
    assert res.stderr.count("skipping broken item") == 2, res.stderr  # ... with a warning each
    assert "control character(s) removed" in res.stderr and f"item {f}: control characters removed" in res.stderr
    assert {c, d, e, f} <= set(stored) and len(stored) >= 370  # the rest of the day is kept
    assert json.loads(stored[c][3]) and all(arxiv.is_category(x) for x in json.loads(stored[c][3]))
    assert stored[c][4] is None  # the hostile DOI is not kept
    assert stored[d][0].startswith("zebrafinch red ") and not CONTROLS.search(stored[d][0])
    assert "zebrafinch" in stored[e][1] and "pwned" not in stored[e][1] and not CONTROLS.search(stored[e][1])
    assert json.loads(stored[f][2])[0] == "Mallory"  # 8-bit CSI "\x9b2J" removed whole
    for arxiv_id, row in stored.items():
        assert STRICT_ID.match(arxiv_id) and not any(CONTROLS.search(x or "") for x in row), arxiv_id
    outputs = _outputs(stack.output_dir)
    published = {p["id"] for p in json.loads(outputs["papers.json"])}
    assert {c, d, e} <= published  # the edited items reached the outputs
    assert_no_live_hostile_markup(outputs)
    for name, text in outputs.items():
        assert not CONTROLS.search(text), name
        assert "2411.90007" not in text, name

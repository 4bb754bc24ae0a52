"""The published files and the web responses agree (docs/ARCHITECTURE.md, "Outputs": one renderer
for both, so the bytes agree). A real `arxiv-bot run` publishes two announcement days from the
stand-ins into OUTPUT_DIR; the web app, on a real socket over the same database, must answer

- every route that serves a file (feeds, JSON, README, stylesheet) with exactly that file's bytes,
  the first time (built) and the second time (web/fastpath.py's cached answer). The site's URL is
  configured (feeds.public_url), as a deployment that publishes files does, so self links are
  the same in both;
- the page and the day pages with the same papers, each shown with the same text: the files
  differ from the web pages only in their links and in the controls that need a server
  (filters), by design (tests/test_publisher_pages.py checks those links).

On SQLite and PostgreSQL.
"""
from __future__ import annotations

import difflib
import json

import pytest
from lxml import etree

from tests.faults import LLM_KEY, make_stack
from tests.standins import arxiv_feeds as feeds
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin
from tests.test_web import get, serve

FILES = {"/feed.xml": "feed.xml", "/atom.xml": "atom.xml", "/feed.json": "feed.json",
         "/papers.json": "papers.json", "/README.md": "README.md", "/static/style.css": "static/style.css"}
PUBLIC_URL = "https://digest.example.org/"


def shown_papers(page: bytes) -> list[str]:
    """Each paper of a page as the reader sees it: the text of its list item."""
    tree = etree.HTML(page)
    return [" ".join("".join(li.itertext()).split()) for li in tree.xpath("//li[@class='paper']")]


def text_diff(expected: str, got: str, name: str, route: str) -> str:
    diff = difflib.unified_diff(expected.splitlines(), got.splitlines(), name, route, lineterm="", n=0)
    return "\n".join(list(diff)[:30])


def compare(base: str, out, days: list[str]) -> None:
    for route, name in FILES.items():
        expected = (out / name).read_bytes()
        for attempt in ("built", "cached"):
            resp = get(base, route)
            assert resp.status_code == 200, (route, resp.status_code)
            if resp.content != expected:
                pytest.fail(f"{route} ({attempt}) differs from {name}:\n"
                            + text_diff(expected.decode(), resp.text, name, route))
    pages = {"/": "index.html", **{f"/day/{d}": f"day/{d}.html" for d in days}}
    for route, name in pages.items():
        expected = shown_papers((out / name).read_bytes())
        resp = get(base, route)
        assert resp.status_code == 200, (route, resp.status_code)
        got = shown_papers(resp.content)
        assert expected and got == expected, text_diff("\n".join(expected), "\n".join(got), name, route)


@pytest.mark.slow
def test_every_route_serves_what_was_published(tmp_path, db_url):
    from shared.settings import load
    from web.app import create_app

    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY) as llm:
        stack = make_stack(tmp_path, db_url, arxiv, llm, announce_types=["new", "replace"],
                           feeds={"public_url": PUBLIC_URL})
        stack.cli("run")
        config, settings = load(stack.env["ARXIV_BOT_CONFIG"], stack.env)
        out = stack.output_dir
        first = (out / "feed.xml").read_bytes()
        with serve(create_app(settings, config=config)) as base:
            compare(base, out, ["2024-11-28"])
            # The next day: a replacement of the top paper, and a two-day feed window.
            top = json.loads((out / "papers.json").read_text())[0]
            bumped = {top["id"]: top["version"] + 1}
            arxiv.set_day(feeds.write_replacement_day(feeds.DEFAULT_DAY, tmp_path / "day2.xml", bumped,
                                                      "Fri, 29 Nov 2024 00:00:00 -0500"))
            stack.cli("run")
            assert (out / "feed.xml").read_bytes() != first
            compare(base, out, ["2024-11-28", "2024-11-29"])  # the running app notices the new publication
    assert [(p["id"], p["version"]) for p in json.loads((out / "papers.json").read_text())] == list(bumped.items())
    assert PUBLIC_URL + "feed.xml" in first.decode()

"""Feedback changes the ranking, end to end (docs/DESIGN.md "Feedback"): the real `arxiv-bot run`
(embedded) or real workers (distributed) on the recorded 28 Nov 2024 day served by the local
arXiv stand-in, the web service on a real socket, SQLite and PostgreSQL.

The loop: a pass publishes; the reader presses the page's forms (POST /feedback with the
signed token, no JavaScript: 303 back to the page; with JavaScript: JSON); the ratings are
stored (the last one wins); the next pass ranks differently: the papers rated "less like this"
are gone, and papers like the liked ones rise with a "liked" term naming them, shown on the
page as "Because you liked ...". A feed item's link opens a confirmation page that records
nothing; its one button does.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlalchemy import select

from shared.db import make_engine, session_factory
from shared.models import Rating
from shared.settings import Settings
from shared.config import load_config
from tests.procs import Stack, write_config
from tests.standins.arxiv import ArxivStandin
from tests.test_web import serve
from web.app import create_app

SITE = "http://digest.example"


@pytest.fixture
def arxiv():
    with ArxivStandin() as server:
        yield server


def make_stack(tmp_path: Path, db_url: str, arxiv, name: str = "run") -> Stack:
    home = tmp_path / name
    home.mkdir()
    config = write_config(home, feedback={"min_ratings": 2}, feeds={"public_url": SITE})
    return Stack(home, {"ARXIV_BOT_CONFIG": str(config), "DATABASE_URL": db_url, "OUTPUT_DIR": str(home / "output"),
                        "ARXIV_RSS_URL": arxiv.rss_url, "ARXIV_API_URL": arxiv.api_url, "LLM_API_KEY": "",
                        "DASHSCOPE_API_KEY": "", "BROKER_URL": "", "REDIS_URL": "", "SECRET_KEY": ""})


def app_for(stack: Stack):
    env = {k: v for k, v in stack.env.items() if k in ("DATABASE_URL", "OUTPUT_DIR", "SECRET_KEY")}
    config = load_config(stack.env["ARXIV_BOT_CONFIG"])
    return create_app(Settings.from_env(config, Path(stack.env["ARXIV_BOT_CONFIG"]), env), config=config)


def papers(stack: Stack) -> list[dict]:
    return json.loads((stack.output_dir / "papers.json").read_text())


def ratings(db_url: str) -> dict[str, tuple[str, str]]:
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as s:
            return {r.paper_id: (r.rating, r.source) for r in s.scalars(select(Rating))}
    finally:
        engine.dispose()


def forms(html: str) -> dict[str, dict[str, dict]]:
    """{paper id: {"More like this"|"Less like this": {"action", "t", "back"}}} of the page."""
    out: dict[str, dict] = {}
    for li in etree.HTML(html).xpath("//li[@class='paper']"):
        for form in li.xpath(".//form[@class='rate']"):
            fields = {i.get("name"): i.get("value") for i in form.xpath(".//input")}
            out.setdefault(li.get("id").removeprefix("p-"), {})[form.xpath("string(.//button)")] = {
                "action": form.get("action"), **fields}
    return out


def post(client: httpx.Client, base: str, form: dict, **kw) -> httpx.Response:
    return client.post(base + form["action"], data={k: v for k, v in form.items() if k != "action"}, **kw)


def wait_for(fetch, condition, timeout: float = 30.0):
    """The web cache re-reads the publication stamp about once a second: poll until it shows."""
    deadline = time.monotonic() + timeout
    while True:
        got = fetch()
        if condition(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


def test_page_forms_change_the_next_pass_and_feed_links_confirm_first(tmp_path, db_url, arxiv):
    stack = make_stack(tmp_path, db_url, arxiv)
    stack.cli("run", "--no-summaries")
    before = papers(stack)
    ids = [p["id"] for p in before]
    assert not any(d["term"] in ("liked", "disliked") for p in before for d in p["match_details"])

    with serve(app_for(stack)) as base, httpx.Client(timeout=15) as client:
        page = client.get(base + "/")
        assert page.status_code == 200
        controls = forms(page.text)
        assert set(controls) == set(ids) and all(set(c) == {"More like this", "Less like this"}
                                                 for c in controls.values())
        down, up = ids[:2], ids[9:12]
        for pid in down:  # without JavaScript: 303 back to the page, at the paper
            resp = post(client, base, controls[pid]["Less like this"])
            assert resp.status_code == 303 and resp.headers["Location"] == f"/#p-{pid}"
        for pid in up:  # with the page's script: JSON, the page stays
            resp = post(client, base, controls[pid]["More like this"], headers={"Accept": "application/json"})
            assert resp.status_code == 200 and resp.json()["recorded"] == "up"
        post(client, base, controls[up[0]]["More like this"])  # a repeated click changes nothing
        post(client, base, controls[ids[2]]["Less like this"])
        post(client, base, controls[ids[2]]["More like this"])  # the last rating wins
        stored = ratings(db_url)
        assert stored == {**{p: ("down", "web") for p in down}, **{p: ("up", "web") for p in [*up, ids[2]]}}

        # A feed item's link: the GET is a confirmation page with one POST button, nothing more.
        feed = etree.fromstring(client.get(base + "/feed.xml").content)
        item = feed.xpath("//item")[5]
        target = item.findtext("guid")
        links = [h for h in etree.HTML(item.findtext("description")).xpath("//a/@href") if "/feedback?t=" in h]
        assert len(links) == 2 and all(h.startswith(f"{SITE}/feedback?t=") for h in links)
        confirm = client.get(base + links[0].removeprefix(SITE))  # "More like this"
        assert confirm.status_code == 200 and confirm.headers["Cache-Control"] == "no-store"
        page_forms = etree.HTML(confirm.text).xpath("//main//form")
        assert len(page_forms) == 1 and len(page_forms[0].xpath(".//button")) == 1
        assert page_forms[0].get("method") == "post"
        assert ratings(db_url) == stored  # the GET recorded nothing
        client.get(base + links[0].removeprefix(SITE))  # nor does a second one (a mail scanner)
        assert ratings(db_url) == stored
        fields = {i.get("name"): i.get("value") for i in page_forms[0].xpath(".//input")}
        done = client.post(base + page_forms[0].get("action"), data=fields)
        assert done.status_code == 200 and "Recorded: more like this" in done.text
        assert ratings(db_url)[target] == ("up", "link")

        # The next pass: the disliked papers are gone, the liked ones pull similar papers up.
        stack.cli("run", "--no-summaries")
        after = papers(stack)
        now = [p["id"] for p in after]
        assert not set(down) & set(now)
        assert now != [i for i in ids if i not in down]
        liked_ids = {*up, ids[2], target}
        explained = [(p, d) for p in after for d in p["match_details"] if d["term"] == "liked"]
        assert explained and all(d["points"] > 0 and d["papers"] and set(d["papers"]) <= liked_ids
                                 for _, d in explained)
        assert all(p["score"] >= 2.5 for p in after)  # min_score still holds
        # The page shows why, once the web cache has seen the new publication.
        page = wait_for(lambda: client.get(base + "/").text, lambda t: "Because you liked" in t)
        assert "Because you liked" in page
        first = next(p for p, _ in explained)
        reason = etree.HTML(page).xpath(f"//li[@id='p-{first['id']}']//p[@class='because']")
        assert reason and "Because you liked" in reason[0].xpath("string(.)")
        assert not any(f"id=\"p-{pid}\"" in page for pid in down)


@pytest.mark.slow
def test_distributed_workers_learn_from_ratings(tmp_path, pg_url, redis_url, arxiv):
    stack = make_stack(tmp_path, pg_url, arxiv, name="dist")
    stack.env.update(BROKER_URL=redis_url, REDIS_URL=redis_url)
    try:
        stack.start_all(summarizers=1)
        stack.cli("trigger", "--wait", "--timeout", "240")
        ids = [p["id"] for p in papers(stack)]
        for pid in ids[:2]:
            stack.cli("feedback", "add", "default", pid, "down")
        for pid in ids[10:13]:
            stack.cli("feedback", "add", "default", pid, "up")
        res = stack.cli("trigger", "--wait", "--timeout", "240")
        assert "published 2024-11-28" in res.stdout, res.stdout
        after = papers(stack)
        assert not {p["id"] for p in after} & set(ids[:2])
        liked = [d for p in after for d in p["match_details"] if d["term"] == "liked"]
        assert liked and all(set(d["papers"]) <= set(ids[10:13]) for d in liked)
    finally:
        stack.stop()

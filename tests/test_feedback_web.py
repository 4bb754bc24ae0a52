"""/feedback over a real socket, on SQLite and PostgreSQL: what is refused (and records nothing),
private profiles, the rate limit, and where the controls appear (the served page: forms; the
published files: absolute links only under feeds.public_url, else nothing)."""
from __future__ import annotations

import contextlib
import datetime as dt
import time
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlalchemy import func, select

from shared import profile_keys
from shared.config import parse_config
from shared.db import make_engine, session_factory
from shared.feedback_links import FeedbackLinks, make_token
from shared.models import Base, Paper, Pass, Publication, Rating
from shared.settings import Settings
from tests.seed import digest_item
from tests.test_web import serve
from web.app import create_app

UTC = dt.timezone.utc
DAY = dt.date(2024, 11, 28)
PROFILES = {"pub": {"categories": ["cs.LG"], "keywords": ["LLM"]},
            "secret": {"categories": ["cs.CL"], "keywords": ["LLM"], "private": True}}
PAPERS = ("2411.20001", "2411.20002", "2411.20003")


def config(**feedback):
    return parse_config({"categories": ["cs.LG"], "profiles": PROFILES, "feeds": {"public_url": "http://digest.example"},
                         "feedback": feedback})


def fill(sm) -> None:
    with sm.begin() as s:
        p = Pass(status="published", day=DAY)
        s.add(p)
        s.flush()
        p.active = None
        for n, pid in enumerate(PAPERS, 1):
            s.add(Paper(id=pid, version=1, title=f"Paper {n} on LLM serving", abstract="An abstract.",
                        authors=["Ada Lovelace"], primary_category="cs.LG", categories=["cs.LG", "cs.CL"],
                        announced=DAY))
            s.flush()
            for slug in PROFILES:
                digest_item(s, p.id, pid, day=DAY, rank=n, score=5.0 - n, matched=["LLM"], profile=slug,
                            match_details=[{"term": "LLM", "where": ["title"], "points": 1.5}])
        for slug in PROFILES:
            s.add(Publication(profile=slug, day=DAY, pass_id=p.id, paper_count=3,
                              published_at=dt.datetime(2024, 11, 28, 6, tzinfo=UTC)))


@contextlib.contextmanager
def serving(db_url):
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    sm = session_factory(engine)
    fill(sm)
    cfg = config()
    app = create_app(Settings.from_env(cfg, Path("config.json"), {"DATABASE_URL": db_url}), config=cfg)
    with serve(app) as base, httpx.Client(timeout=10) as client:
        yield base, client, sm, app
    engine.dispose()


@pytest.fixture
def site(db_url):
    with serving(db_url) as running:
        yield running


def secret_of(app) -> bytes:
    return app.extensions["arxiv_bot"].secret()


def count(sm) -> int:
    with sm() as s:
        return s.scalar(select(func.count()).select_from(Rating))


def test_forged_expired_and_mismatched_tokens_record_nothing(site):
    base, client, sm, app = site
    secret, now = secret_of(app), int(time.time())
    good = make_token(secret, "pub", PAPERS[0], "up", 1, now)
    payload, stamp, sig = good.split(".")
    other_payload = make_token(secret, "secret", PAPERS[0], "up", 1, now).split(".")[0]
    refused = {
        "tampered": (good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"), "/feedback"),
        "payload of another profile": (f"{other_payload}.{stamp}.{sig}", "/feedback"),
        "another secret": (make_token(b"not-this-deployment", "pub", PAPERS[0], "up", 1, now), "/feedback"),
        "expired": (make_token(secret, "pub", PAPERS[0], "up", 1, now - 91 * 86400), "/feedback"),
        "another profile's route": (good, "/p/secret/feedback"),
        "unknown profile": (make_token(secret, "gone", PAPERS[0], "up", 1, now), "/feedback"),
        "unknown paper": (make_token(secret, "pub", "2411.99999", "up", 1, now), "/feedback"),
        "missing": ("", "/feedback"),
    }
    for why, (token, path) in refused.items():
        for resp in (client.post(base + path, data={"t": token}), client.get(base + path, params={"t": token})):
            assert resp.status_code == 400, (why, resp.status_code)
            message = etree.HTML(resp.text).xpath("string(//p[@class='error'])")
            assert message.startswith("feedback link") and "\n" not in message, (why, message)
            assert "Traceback" not in resp.text and (not token or token[:20] not in message)
    assert count(sm) == 0
    # The same token on the right routes is fine.
    assert client.post(base + "/p/pub/feedback", data={"t": good}).status_code == 200
    assert client.post(base + "/feedback", data={"t": good}).status_code == 200
    assert count(sm) == 1


def test_private_profile_token_needs_no_key_and_dies_with_a_rotated_key(site):
    base, client, sm, app = site
    assert client.get(base + "/p/secret/").status_code == 404  # the page needs the key ...
    with sm.begin() as s:
        key = profile_keys.profile_key(s, app.extensions["arxiv_bot"].settings, "secret")
    page = client.get(base + "/p/secret/", params={"key": key})
    assert page.status_code == 200
    form = etree.HTML(page.text).xpath("//li[@id='p-2411.20002']//form[@class='rate'][2]")[0]
    fields = {i.get("name"): i.get("value") for i in form.xpath(".//input")}
    assert fields["back"] == "/p/secret/" and form.get("action") == "/feedback"
    # ... its feedback token does not: a fresh client, no key, no cookie.
    with httpx.Client(timeout=10) as stranger:
        resp = stranger.post(base + "/feedback", data=fields)
        assert resp.status_code == 303 and resp.headers["Location"] == "/p/secret/#p-2411.20002"
    with sm() as s:
        assert s.get(Rating, ("secret", "2411.20002")).rating == "down"
    with sm.begin() as s:
        profile_keys.rotate(s, "secret")  # every old link stops working, feedback links too
    up = fields | {"t": make_token(secret_of(app), "secret", "2411.20002", "up", 1)}
    assert client.post(base + "/feedback", data=up).status_code == 400
    with sm() as s:
        assert s.get(Rating, ("secret", "2411.20002")).rating == "down"


def test_get_confirms_only_and_back_stays_on_this_site(site):
    base, client, sm, app = site
    token = make_token(secret_of(app), "pub", PAPERS[1], "down", 1)
    for method in ("GET", "HEAD"):
        resp = client.request(method, base + "/feedback", params={"t": token})
        assert resp.status_code == 200 and resp.headers["Referrer-Policy"] == "no-referrer"
    assert "Less like this" not in resp.text and count(sm) == 0
    page = client.get(base + "/feedback", params={"t": token})
    assert "less like this" in page.text and "Paper 2 on LLM serving" in page.text
    for back in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        resp = client.post(base + "/feedback", data={"t": token, "back": back})
        assert resp.status_code == 200 and "Location" not in resp.headers and "Recorded" in resp.text
    assert count(sm) == 1
    big = client.post(base + "/feedback", data={"t": token, "back": "/" + "x" * 5000})
    assert big.status_code == 413


def test_rate_limit_answers_429_with_retry_after(db_url):
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    sm = session_factory(engine)
    fill(sm)
    cfg = config(rate_limit_per_minute=5)
    app = create_app(Settings.from_env(cfg, Path("config.json"), {"DATABASE_URL": db_url}), config=cfg)
    with serve(app) as base, httpx.Client(timeout=10) as client:
        token = make_token(secret_of(app), "pub", PAPERS[0], "up", 1)
        codes = [client.get(base + "/feedback", params={"t": token}).status_code for _ in range(5)]
        assert codes == [200] * 5
        limited = client.post(base + "/feedback", data={"t": token})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert "try again in" in limited.text
    assert count(sm) == 0
    engine.dispose()


def test_published_files_offer_links_only_under_a_public_url():
    from shared.digest import build_context
    from shared.render.feeds import feed_meta, render_json_feed, render_rss
    from shared.render.html import render_page
    from shared.render.links import Links
    from tests.test_render_outputs import make_paper

    ctx = build_context([make_paper(1)], day=DAY, generated_at=dt.datetime(2024, 11, 28, tzinfo=UTC),
                        categories=["cs.LG"], keywords=[], schedule="", model="m")
    pid = ctx["papers"][0]["id"]
    without = FeedbackLinks(b"k", "default", 1, 1_732_780_800)
    with_url = FeedbackLinks(b"k", "default", 1, 1_732_780_800, base_url="https://d.example")
    html = render_page(ctx, {}, [DAY], links=Links.files(0, [DAY], without))
    assert "<form" not in html and "/feedback" not in html and 'class="rate"' not in html
    html = render_page(ctx, {}, [DAY], links=Links.files(0, [DAY], with_url))
    hrefs = etree.HTML(html).xpath("//a[@class='rate']/@href")
    assert hrefs == [with_url.url(pid, "up"), with_url.url(pid, "down")] and "<form" not in html
    assert "<script" not in html
    meta = feed_meta(config(), "feed.xml", feedback=without)
    assert "/feedback" not in render_rss(ctx["papers"], meta).decode()
    meta = feed_meta(config(), "feed.json", feedback=with_url)
    item = __import__("json").loads(render_json_feed(ctx["papers"], meta))["items"][0]
    assert item["_arxiv_bot"]["feedback"] == {"up": with_url.url(pid, "up"), "down": with_url.url(pid, "down")}
    assert with_url.url(pid, "up") in item["content_html"]


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="/usr/bin/chromium is absent")
def test_buttons_in_a_real_browser_with_and_without_javascript(sqlite_url):
    """Chromium under the page's CSP: without JavaScript the form posts and comes back to the
    paper; with it (static/feedback.js) the page stays and says what was recorded."""
    from playwright.sync_api import sync_playwright

    from tests.test_browser import ARGS, CHROMIUM, new_page

    with serving(sqlite_url) as (base, _client, sm, _app), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            plain = new_page(browser)
            plain.goto(base + "/p/pub/")
            plain.locator("#p-2411\\.20001 button:text-is('Less like this')").click()
            plain.wait_for_load_state()
            assert plain.url == base + "/p/pub/#p-2411.20001"
            scripted = new_page(browser, javascript=True)
            scripted.goto(base + "/p/pub/")
            scripted.locator("#p-2411\\.20002 button:text-is('More like this')").click()
            status = scripted.locator("#p-2411\\.20002 .rated")
            status.wait_for(state="visible")
            assert "Recorded: more like this" in status.inner_text()
            assert scripted.url == base + "/p/pub/"  # no navigation
            assert scripted.locator("#p-2411\\.20002 button:text-is('More like this')").get_attribute(
                "aria-pressed") == "true"
            assert not [e for e in plain.csp_errors + scripted.csp_errors if "Content Security Policy" in e]
        finally:
            browser.close()
        with sm() as s:
            assert {(r.paper_id, r.rating, r.source) for r in s.scalars(select(Rating))} == {
                ("2411.20001", "down", "web"), ("2411.20002", "up", "web")}

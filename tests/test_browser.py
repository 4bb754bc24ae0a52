"""The digest page in a real headless Chromium (Debian's chromium, driven by Playwright): papers
shown, the category filter form narrows them (no JavaScript needed), the summary expands."""
from __future__ import annotations

import datetime as dt
import os

import pytest

from shared.db import make_engine, session_factory
from shared.models import Base
from tests.test_web import CONFIG, DAY1, DAY2, UTC, _settings, publish, serve
from web.app import create_app

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is absent (apt-get install chromium)")


@pytest.fixture
def base_url(sqlite_url):
    engine = make_engine(sqlite_url)
    Base.metadata.create_all(engine)
    sm = session_factory(engine)
    publish(sm, DAY1, [("2411.10001", "Yesterday's paper", ("cs.LG",), 5.0, "Old.", False)],
            dt.datetime(2024, 11, 27, 6, 0, tzinfo=UTC))
    publish(sm, DAY2, [
        ("2411.20001", "Speculative decoding for LLM inference", ("cs.LG",), 7.5, "Faster decoding.", True),
        ("2411.20002", "Parsing with transformers", ("cs.CL",), 4.0, "A parser.", False),
    ], dt.datetime(2024, 11, 28, 6, 0, tzinfo=UTC))
    with serve(create_app(_settings(sqlite_url), config=CONFIG)) as base:
        yield base
    engine.dispose()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(java_script_enabled=False)  # the page must work without JS
        yield context.new_page()
        browser.close()


def test_page_filter_and_summary(base_url, page):
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(base_url + "/")
    titles = page.locator("li.paper h2").all_inner_texts()
    assert titles == ["1. Speculative decoding for LLM inference", "2. Parsing with transformers"]
    # The stylesheet loaded under the CSP (style-src 'self'): the body has the page's max width.
    assert page.locator("body").evaluate("e => getComputedStyle(e).maxWidth") == "960px"

    summary = page.locator("details.summary").first
    assert summary.evaluate("e => e.open") is False
    assert not page.get_by_text("Contribution of 2411.20001").is_visible()
    summary.locator("summary").click()
    assert summary.evaluate("e => e.open") is True
    assert page.get_by_text("Contribution of 2411.20001").is_visible()

    page.select_option("select[name=category]", "cs.CL")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "category=cs.CL" in page.url
    assert page.locator("li.paper h2").all_inner_texts() == ["2. Parsing with transformers"]
    assert page.locator("select[name=category]").input_value() == "cs.CL"

    page.click("a[href='/day/2024-11-27']")
    page.wait_for_load_state()
    assert page.locator("li.paper h2").all_inner_texts() == ["1. Yesterday's paper"]
    assert not [e for e in errors if "Content Security Policy" in e]

"""The digest page in a real headless Chromium (Debian's chromium, driven by Playwright), with
JavaScript off (the page must work without it): a recorded announcement day of 30 papers (real
titles, names and abstracts from tests/data/arxiv, TeX and all; 15 with summaries) and an
earlier day.

- Scan first: at 1280 px wide the 30-paper page is at most 6,000 px tall; abstracts and
  summaries fold open and close; screenshots (full page, phone width) go to the test's tmp dir.
- No raw TeX anywhere in the page's text (folded text included).
- axe-core (the copy shipped in the axe-playwright-python package) finds no serious or critical
  violation on the digest page (light and dark scheme) and on an error page.
- The filter form, sorting, the compact view and the day navigation work without JavaScript.
- The publisher's static page works opened as a file: its stylesheet loads, it has no form.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest

from shared.db import make_engine, session_factory
from shared.models import Base, Paper, Pass, Publication, Summary
from tests.seed import digest_item
from tests.test_web import CONFIG, UTC, _settings, serve
from web.app import create_app

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
RECORDED = Path(__file__).parent / "data" / "arxiv" / "rss" / "rss2_2024-11-28_all20archives_1504items.xml"
DAY1, DAY2 = dt.date(2024, 11, 27), dt.date(2024, 11, 28)
MAX_HEIGHT = 6000
# TeX left as source: a macro (\'e, \textbf), a math dollar before a formula, a braced accent.
RAW_TEX = re.compile(r"\\[A-Za-z]{2,}|\\['\"`^~=.uvHck]|\$(?=[\\A-Za-z{(^_])|\{\\")



@pytest.fixture(autouse=True)
def _chromium():
    """Without Chromium the tests skip on a developer's machine, but fail in CI (CI set, as CI
    services and .ci/run do): there a skipped browser test would pass a broken page silently."""
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{CHROMIUM} is absent and CI is set: in CI the browser tests must run "
                    "(.ci/run installs chromium)")
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")


def recorded_papers(n: int = 30) -> list:
    """`n` papers of the recorded day with TeX in their title, names or abstract (deterministic)."""
    from services.fetcher.rss import parse_rss

    items = parse_rss(RECORDED.read_bytes()).items
    tex = re.compile(r"[\\$]")
    picked = [i for i in items if tex.search(i.title) or tex.search(i.abstract or "") or any(map(tex.search, i.authors))]
    return picked[:n]


def fill(sm) -> list:
    """DAY1 with one paper, DAY2 with the 30 recorded papers (15 summarized); returns DAY2's items."""
    items = recorded_papers(31)
    with sm.begin() as s:
        for day, chosen, at in ((DAY1, items[30:31], 5), (DAY2, items[:30], 6)):
            ps = Pass(status="published", day=day)
            s.add(ps)
            s.flush()
            ps.active = None
            for rank, it in enumerate(chosen, 1):
                pid = it.id if day == DAY2 else "2411.09999"
                if s.get(Paper, pid) is None:
                    s.add(Paper(id=pid, version=it.version or 1, title=it.title, abstract=it.abstract or "",
                                authors=list(it.authors), primary_category=it.categories[0],
                                categories=list(it.categories), announced=day))
                    s.flush()
                summary_id = None
                if day == DAY2 and rank <= 15:
                    summ = Summary(
                        paper_id=pid, version=it.version or 1, model="qwen-long", prompt_hash="h", language="en",
                        input_mode="abstract", status="done", raw_text="raw",
                        tldr=f"The paper studies {it.title[:60]} and shows a cost of $O(n^2)$ against $O(n^3)$ "
                             "for the baselines, with experiments on two public benchmarks.",
                        sections={"contributions": f"Contribution of {pid}: a method with **two** parts.",
                                  "method": "A draft model proposes; the target verifies in $O(k)$ steps.",
                                  "results": "| metric | value |\n|---|---|\n| speed-up | 2.1x |",
                                  "conclusions": "Works on commodity GPUs."})
                    s.add(summ)
                    s.flush()
                    summary_id = summ.id
                digest_item(s, ps.id, pid, day=day, version=it.version or 1, score=12.0 - rank * 0.3, rank=rank,
                            matched=["LLM", "Inference"],
                            match_details=[{"term": "LLM", "where": ["title", "abstract"], "points": 1.5},
                                           {"term": "Inference", "where": ["abstract"], "points": 1.0}],
                            summary_state="done" if summary_id else None, summary_id=summary_id)
            s.add(Publication(day=day, pass_id=ps.id, paper_count=len(chosen),
                              published_at=dt.datetime(2024, 11, day.day, at, 0, tzinfo=UTC)))
    return items[:30]


@pytest.fixture
def site(sqlite_url):
    engine = make_engine(sqlite_url)
    Base.metadata.create_all(engine)
    items = fill(session_factory(engine))
    with serve(create_app(_settings(sqlite_url), config=CONFIG)) as base:
        yield base, items
    engine.dispose()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def new_page(browser, width=1280, height=900, scheme="light", javascript=False):
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": width, "height": height},
                                  color_scheme=scheme)
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.csp_errors = errors
    return page


def axe_serious(page) -> list[dict]:
    """axe-core's serious and critical violations on the loaded page (rule id, impact, nodes).
    axe runs as a script, so the page must come from a context with JavaScript on (the page
    itself has none: the CSP forbids scripts; Playwright's evaluation is not subject to it)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def test_scan_first_height_folds_and_screenshots(site, browser, tmp_path):
    base, _ = site
    page = new_page(browser)
    page.goto(base + "/")
    assert page.locator("li.paper").count() == 30
    height = page.evaluate("document.documentElement.scrollHeight")
    page.screenshot(path=str(tmp_path / "digest-1280.png"), full_page=True)
    page.screenshot(path=str(tmp_path / "digest-1280-top.png"))  # the first screen, as a person sees it
    print(f"page height for 30 papers at 1280 px: {height} px; screenshots in {tmp_path}")
    assert height <= MAX_HEIGHT, f"the default view is {height} px tall"
    # The stylesheet loaded under the CSP (style-src 'self').
    assert page.locator("body").evaluate("e => getComputedStyle(e).maxWidth") == "960px"
    assert not [e for e in page.csp_errors if "Content Security Policy" in e]

    first = page.locator("li.paper").first
    assert first.locator(".tldr").is_visible() and "O(n²)" in first.locator(".tldr").inner_text()
    for fold in ("details.abstract", "details.summary"):
        details = first.locator(fold)
        body = details.locator("p, div.summary-body").first
        assert details.evaluate("e => e.open") is False and not body.is_visible()
        details.locator("summary").click()
        assert details.evaluate("e => e.open") is True and body.is_visible()
        details.locator("summary").click()
        assert details.evaluate("e => e.open") is False and not body.is_visible()
    assert page.evaluate("document.documentElement.scrollHeight") == height

    phone = new_page(browser, width=390, height=844)
    phone.goto(base + "/")
    phone.screenshot(path=str(tmp_path / "digest-phone.png"), full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    assert (tmp_path / "digest-1280.png").stat().st_size > 10_000 and (tmp_path / "digest-phone.png").exists()


def test_no_raw_tex_in_the_page(site, browser):
    base, items = site
    page = new_page(browser)
    page.goto(base + "/")
    text = page.evaluate("document.body.textContent")  # folded text included
    leftovers = sorted({m.group(0) for m in RAW_TEX.finditer(text)})
    assert not leftovers, leftovers
    sources = " ".join(i.title + " " + " ".join(i.authors) + " " + (i.abstract or "") for i in items)
    assert RAW_TEX.search(sources), "the recorded papers do carry TeX"
    assert "Kadıoğlu" in text or "Schrödinger" in text or "é" in text


def test_accessibility_digest_and_error_page(site, browser, tmp_path):
    base, _ = site
    for scheme in ("light", "dark"):
        page = new_page(browser, scheme=scheme, javascript=True)
        page.goto(base + "/")
        page.screenshot(path=str(tmp_path / f"digest-{scheme}.png"))
        assert axe_serious(page) == [], scheme
    error = new_page(browser, javascript=True)
    resp = error.goto(base + "/day/2020-01-01")
    assert resp.status == 404
    assert error.locator("h1").inner_text() == "404 Not Found"
    assert error.locator("header a.brand").get_attribute("href") == "/"
    assert error.locator("header a[href='/feed.xml']").count() == 1
    error.screenshot(path=str(tmp_path / "error-404.png"))
    assert axe_serious(error) == []


def test_filter_sort_compact_and_days_without_javascript(site, browser):
    base, items = site
    page = new_page(browser)
    page.goto(base + "/")
    cats = page.locator("li.paper").evaluate_all(
        "els => els.map(e => e.querySelector('.chip.cat').textContent)")
    target = sorted(set(cats))[-1]
    page.select_option("select[name=category]", target)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert f"category={target}" in page.url
    shown = page.locator("li.paper .chips").all_inner_texts()
    assert shown and all(target in s for s in shown)
    # The header's feeds follow the active filter.
    assert page.locator(f"header a[href='/feed.xml?category={target}']").count() == 1
    assert page.locator("header a[href='/feeds.opml']").count() == 1

    page.goto(base + "/")
    page.click(".views a:text-is('category')")  # the sort link
    page.wait_for_load_state()
    assert "sort=category" in page.url
    primaries = page.locator("li.paper").evaluate_all(
        "els => els.map(e => e.querySelector('.chip.cat').textContent)")
    assert primaries == sorted(primaries) and len(primaries) == 30

    page.click(".views a:text-is('compact list')")
    page.wait_for_load_state()
    assert "view=compact" in page.url and page.locator("ol.compact li").count() == 30
    assert page.locator("li.paper").count() == 0
    compact_height = page.evaluate("document.documentElement.scrollHeight")
    assert compact_height < 3000

    page.goto(base + "/")
    page.click("a[rel=prev]")
    page.wait_for_load_state()
    assert page.url.endswith("/day/2024-11-27") and page.locator("li.paper").count() == 1
    page.click("a[rel=next]")
    page.wait_for_load_state()
    assert page.url.endswith("/day/2024-11-28") and page.locator("li.paper").count() == 30


def test_static_page_works_as_a_file(site, browser, tmp_path):
    """The publisher's kind of page (relative links among the files) opened from disk."""
    from shared.digest import build_context
    from shared.render.html import render_page, stylesheet
    from shared.render.links import Links
    from tests.test_render_outputs import make_paper

    out = tmp_path / "output"
    (out / "static").mkdir(parents=True)
    (out / "static" / "style.css").write_text(stylesheet())
    ctx = build_context([make_paper(n) for n in range(1, 4)], day=DAY2, generated_at=dt.datetime(2024, 11, 28, tzinfo=UTC),
                        categories=["cs.LG"], keywords=[], schedule="", model="m")
    (out / "index.html").write_text(render_page(ctx, {}, [DAY2, DAY1], links=Links.files(0, [DAY2])))
    page = new_page(browser)
    page.goto((out / "index.html").as_uri())
    assert page.locator("body").evaluate("e => getComputedStyle(e).maxWidth") == "960px"
    assert page.locator("form").count() == 0 and page.locator("li.paper").count() == 3
    hrefs = page.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    local = [h for h in hrefs if not h.startswith(("https://", "#"))]
    assert "day/2024-11-27.html" not in local  # no page for that day among the files: not linked
    assert all((out / h.split("?")[0]).exists() or h in ("feed.xml", "atom.xml", "feed.json", "papers.json",
                                                          "README.md") for h in local), local

"""The web service over a real HTTP socket (werkzeug server in a thread, httpx client), on real
SQLite and PostgreSQL databases filled through the models."""
from __future__ import annotations

import datetime as dt
import functools
import json
import threading
import time
from pathlib import Path

import feedparser
import httpx
import pytest
from werkzeug.serving import make_server

from shared.config import parse_config
from shared.db import make_engine, session_factory
from shared.models import Base, Paper, Pass, Publication, Summary
from shared.settings import Settings
from tests.seed import digest_item
from web.app import create_app

UTC = dt.timezone.utc
DAY1, DAY2 = dt.date(2024, 11, 27), dt.date(2024, 11, 28)
CONFIG = parse_config({"categories": ["cs.LG", "cs.CL"], "keywords": ["LLM", "Inference"],
                       "feeds": {"public_url": "http://digest.example"}})


def _settings(db_url: str, broker: str | None = None) -> Settings:
    env = {"DATABASE_URL": db_url, **({"BROKER_URL": broker} if broker else {})}
    return Settings.from_env(CONFIG, Path("config.json"), env)


def publish(session_maker, day: dt.date, papers: list[tuple], at: dt.datetime) -> None:
    """One published pass: papers = [(id, title, cats, score, abstract, with_summary)], ranked in order."""
    with session_maker.begin() as s:
        ps = Pass(status="published", day=day)
        s.add(ps)
        s.flush()
        ps.active = None  # terminal pass (an explicit None at insert would get the column default)
        s.flush()
        for rank, (pid, title, cats, score, abstract, summarized) in enumerate(papers, 1):
            if s.get(Paper, pid) is None:
                s.add(Paper(id=pid, version=1, title=title, abstract=abstract, authors=["Ada Lovelace", "Alan Turing"],
                            primary_category=cats[0], categories=list(cats), announced=day))
                s.flush()
            summary_id = None
            if summarized:
                summ = Summary(paper_id=pid, version=1, model="qwen-long", prompt_hash="h", language="en",
                               input_mode="abstract", status="done", raw_text="raw", tldr=f"TLDR {pid}",
                               sections={"contributions": f"Contribution of {pid}", "method": "m",
                                         "results": "r", "conclusions": "c"})
                s.add(summ)
                s.flush()
                summary_id = summ.id
            digest_item(s, ps.id, pid, day=day, rank=rank, score=score, matched=["LLM"],
                        match_details=[{"term": "LLM", "where": ["abstract"], "points": 1.0}],
                        summary_state="done" if summarized else "skipped", summary_id=summary_id,
                        note=None if summarized else "AI summaries disabled: set DASHSCOPE_API_KEY")
        s.add(Publication(day=day, pass_id=ps.id, paper_count=len(papers), published_at=at))


@pytest.fixture
def site(db_url):
    """A filled database and the app served on a real socket; yields (base_url, sessionmaker)."""
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    sm = session_factory(engine)
    publish(sm, DAY1, [("2411.10001", "Old paper on LLM inference", ("cs.LG",), 6.0, "An older abstract.", False)],
            dt.datetime(2024, 11, 27, 6, 0, tzinfo=UTC))
    publish(sm, DAY2, [
        ("2411.20001", "Speculative decoding for LLM inference", ("cs.LG", "cs.AI"), 7.5,
         "We make speculative decoding faster.", True),
        ("2411.20002", "Parsing with transformers", ("cs.CL",), 4.0, "A parser built on attention.", False),
        ("2411.20003", "Sparse kernels <script>alert(1)</script>", ("cs.DC", "cs.LG"), 3.0,
         "Sparse attention kernels & throughput.", False),
    ], dt.datetime(2024, 11, 28, 6, 0, tzinfo=UTC))
    with serve(create_app(_settings(db_url), config=CONFIG)) as base:
        yield base, sm
    engine.dispose()


class serve:
    """Run a WSGI app on 127.0.0.1 (an OS-chosen port) in a thread for the block's duration."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_port}"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()
        rt = self.app.extensions["arxiv_bot"].rt
        if "engine" in rt.__dict__:  # close the app's pooled connections so the test DB can be dropped
            rt.engine.dispose()


@functools.lru_cache(maxsize=1)
def _client() -> httpx.Client:
    # One client for the module: building an httpx client per request costs ~0.1 s (TLS setup).
    return httpx.Client(timeout=10)


def get(base: str, path: str, **kw) -> httpx.Response:
    return _client().get(base + path, **kw)


def assert_short_error(resp: httpx.Response) -> None:
    assert "Traceback" not in resp.text and 'File "' not in resp.text
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_routes_and_contents(site):
    base, _ = site
    page = get(base, "/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "Speculative decoding for LLM inference" in page.text and "Parsing with transformers" in page.text
    assert "Sparse kernels &lt;script&gt;" in page.text and "<script>" not in page.text
    # The only script is the page's own file (the feedback buttons in place), never inline.
    assert page.text.count("<script") == 1 and '<script src="/static/feedback.js" defer></script>' in page.text
    assert 'href="/day/2024-11-27"' in page.text and "TLDR 2411.20001" in page.text
    assert "set DASHSCOPE_API_KEY" in page.text

    rss = feedparser.parse(get(base, "/feed.xml").content)
    assert rss.bozo == 0 and [e.id for e in rss.entries] == ["2411.20001", "2411.20002", "2411.20003", "2411.10001"]
    assert rss.feed.link == "http://digest.example/"
    atom = feedparser.parse(get(base, "/atom.xml").content)
    assert atom.bozo == 0 and atom.entries[0].id == "https://arxiv.org/abs/2411.20001"
    jf = get(base, "/feed.json")
    assert jf.headers["Content-Type"].startswith("application/feed+json")
    assert [i["id"] for i in jf.json()["items"]][:1] == ["2411.20001"]

    papers = get(base, "/papers.json").json()
    assert [p["id"] for p in papers] == ["2411.20001", "2411.20002", "2411.20003"]  # latest digest only
    assert papers[0]["summary"]["tldr"] == "TLDR 2411.20001" and papers[0]["pdf_url"].endswith("2411.20001v1")
    assert papers[2]["title"] == "Sparse kernels <script>alert(1)</script>"  # text intact in JSON

    readme = get(base, "/README.md")
    assert readme.headers["Content-Type"].startswith("text/markdown")
    assert "### 1. [Speculative decoding for LLM inference](https://arxiv.org/abs/2411.20001)" in readme.text
    assert "**Score**: 7.5  " in readme.text

    css = get(base, "/static/style.css")
    assert css.status_code == 200 and "font" in css.text

    day = get(base, "/day/2024-11-27")
    assert day.status_code == 200 and "Old paper on LLM inference" in day.text
    assert "Speculative decoding" not in day.text
    missing = get(base, "/day/2024-11-01")
    assert missing.status_code == 404 and "no digest was published for 2024-11-01" in missing.text
    assert get(base, "/day/2024-99-01").status_code == 400
    assert get(base, "/no/such/page").status_code == 404


def test_filters(site):
    base, _ = site
    ids = lambda path: [p["id"] for p in get(base, path).json()]  # noqa: E731
    assert ids("/papers.json?category=cs.LG") == ["2411.20001", "2411.20003"]
    assert ids("/papers.json?min_score=4") == ["2411.20001", "2411.20002"]
    assert ids("/papers.json?q=PARSER") == ["2411.20002"]
    assert ids("/papers.json?limit=1") == ["2411.20001"]
    assert ids("/papers.json?category=cs.LG&min_score=5&q=decoding") == ["2411.20001"]
    rss = feedparser.parse(get(base, "/feed.xml?category=cs.CL").content)
    assert [e.id for e in rss.entries] == ["2411.20002"]
    assert "category=cs.CL" in get(base, "/feed.xml?category=cs.CL").text  # self link keeps the query
    items = get(base, "/feed.json?min_score=6").json()["items"]
    assert [i["id"] for i in items] == ["2411.20001", "2411.10001"]
    page = get(base, "/?category=cs.CL")
    assert "Parsing with transformers" in page.text and "Speculative decoding" not in page.text
    assert '<option value="cs.CL" selected>' in page.text
    assert "Speculative" not in get(base, "/README.md?category=cs.CL").text


def test_bad_parameters(site):
    base, _ = site
    unknown = get(base, "/feed.xml?category=cs.XX")
    assert unknown.status_code == 404
    assert unknown.text.strip() == "unknown category 'cs.XX'; known: cs.LG, cs.CL, cs.AI, cs.DC"
    assert get(base, "/papers.json?category=math.GT").json()["error"].startswith("unknown category 'math.GT'")
    bad = get(base, "/feed.xml?min_score=lots")
    assert bad.status_code == 400 and bad.text.strip() == "min_score: expected a number, got 'lots'"
    assert get(base, "/feed.json?limit=0").status_code == 400
    assert get(base, "/papers.json?min_score=nan").status_code == 400
    page = get(base, "/?category=%3Cscript%3E")
    assert page.status_code == 400 and "<script>" not in page.text
    for resp in (unknown, bad, page):
        assert_short_error(resp)


def test_conditional_get(site):
    base, _ = site
    first = get(base, "/feed.xml")
    assert first.status_code == 200
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.headers["Cache-Control"] == "public, max-age=300"
    assert modified == "Thu, 28 Nov 2024 06:00:00 GMT"
    assert get(base, "/feed.xml").content == first.content  # stable bytes, stable ETag
    by_etag = get(base, "/feed.xml", headers={"If-None-Match": etag})
    assert by_etag.status_code == 304 and by_etag.content == b"" and by_etag.headers["ETag"] == etag
    by_date = get(base, "/feed.xml", headers={"If-Modified-Since": modified})
    assert by_date.status_code == 304
    older = get(base, "/feed.xml", headers={"If-Modified-Since": "Wed, 27 Nov 2024 06:00:00 GMT"})
    assert older.status_code == 200
    other = get(base, "/feed.xml", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    filtered = get(base, "/feed.xml?category=cs.CL")
    assert filtered.headers["ETag"] != etag
    assert get(base, "/feed.xml?category=cs.CL", headers={"If-None-Match": filtered.headers["ETag"]}).status_code == 304


def test_new_publication_invalidates_cache(site):
    base, sm = site
    first = get(base, "/feed.xml")
    assert "2411.30001" not in first.text
    publish(sm, dt.date(2024, 11, 29), [("2411.30001", "Brand new LLM paper", ("cs.LG",), 9.0, "New.", False)],
            dt.datetime(2024, 11, 29, 6, 0, tzinfo=UTC))
    deadline = time.monotonic() + 15  # the stamp is re-read about once a second
    while True:
        fresh = get(base, "/feed.xml", headers={"If-None-Match": first.headers["ETag"]})
        if fresh.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert fresh.status_code == 200 and "Brand new LLM paper" in fresh.text
    assert fresh.headers["Last-Modified"] == "Fri, 29 Nov 2024 06:00:00 GMT"
    assert [p["id"] for p in get(base, "/papers.json").json()] == ["2411.30001"]
    assert "Brand new LLM paper" in get(base, "/").text
    assert 'href="/day/2024-11-28"' in get(base, "/").text


def test_healthz_ok_with_broker(db_url, redis_url):
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    with serve(create_app(_settings(db_url, broker=redis_url), config=CONFIG)) as base:
        resp = get(base, "/healthz")
        assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-cache"
        assert resp.json() == {"database": "ok", "broker": "ok", "status": "ok"}
        empty = get(base, "/papers.json")  # nothing published yet: an empty digest, not an error
        assert empty.status_code == 200 and empty.json() == []
        assert get(base, "/feed.xml").status_code == 200
    engine.dispose()


def test_database_down_503_without_traceback(sqlite_url):
    down = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"
    with serve(create_app(_settings(down, broker="redis://127.0.0.1:1/0"), config=CONFIG)) as base:
        health = get(base, "/healthz")
        assert health.status_code == 503
        body = health.json()
        assert body["database"].startswith("error: ") and body["broker"].startswith("error: ")
        assert body["status"] == "error" and "Traceback" not in health.text
        for path, kind in (("/", "text/html"), ("/feed.xml", "text/plain"), ("/papers.json", "application/json")):
            resp = get(base, path)
            assert resp.status_code == 503 and resp.headers["Content-Type"].startswith(kind)
            assert "database unavailable" in resp.text
            assert_short_error(resp)
    # A reachable database with an unreachable broker is still unhealthy.
    engine = make_engine(sqlite_url)
    Base.metadata.create_all(engine)
    with serve(create_app(_settings(sqlite_url, broker="redis://127.0.0.1:1/0"), config=CONFIG)) as base:
        resp = get(base, "/healthz")
        assert resp.status_code == 503 and json.loads(resp.text)["database"] == "ok"
    engine.dispose()


def test_digest_loaders(db_url):
    """shared.digest on real rows: the window counts back from the NEWEST publication (demo data
    is old), papers come ranked, a pass's digest and the published days."""
    from shared import digest

    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    sm = session_factory(engine)
    publish(sm, dt.date(2024, 9, 1), [("2409.00001", "Too old for the window", ("cs.LG",), 9.0, "Old.", False)],
            dt.datetime(2024, 9, 1, 6, 0, tzinfo=UTC))
    publish(sm, DAY1, [("2411.10001", "Day one", ("cs.LG",), 6.0, "One.", False)],
            dt.datetime(2024, 11, 27, 6, 0, tzinfo=UTC))
    publish(sm, DAY2, [("2411.20001", "Second", ("cs.CL",), 3.0, "Two.", True),
                       ("2411.20002", "First? no, rank 2", ("cs.LG",), 8.0, "Three.", False)],
            dt.datetime(2024, 11, 28, 6, 0, tzinfo=UTC))
    with sm() as s:
        window = digest.load_window(s, days=30, max_items=10)
        assert [p["id"] for p in window] == ["2411.20001", "2411.20002", "2411.10001"]
        assert [p["day"] for p in window] == ["2024-11-28", "2024-11-28", "2024-11-27"]
        assert [p["id"] for p in digest.load_window(s, days=1, max_items=10)] == ["2411.20001", "2411.20002"]
        assert len(digest.load_window(s, days=365, max_items=2)) == 2
        assert digest.published_days(s) == [DAY2, DAY1, dt.date(2024, 9, 1)]
        latest = digest.latest_publication(s)
        assert latest.day == DAY2
        papers = digest.load_pass_papers(s, latest.pass_id)
        assert [(p["rank"], p["id"]) for p in papers] == [(1, "2411.20001"), (2, "2411.20002")]
        first = papers[0]
        assert first["summary"]["tldr"] == "TLDR 2411.20001" and first["summary"]["model"] == "qwen-long"
        assert first["summary"]["sections"]["contributions"] == "Contribution of 2411.20001"
        assert first["abs_url"] == "https://arxiv.org/abs/2411.20001"
        assert first["pdf_url"] == "https://arxiv.org/pdf/2411.20001v1"
        assert first["matched"] == ["LLM"] and first["published"] == "2024-11-28" and first["score"] == 3.0
        assert papers[1]["summary"] is None and papers[1]["summary_status"] == "skipped"
        assert papers[1]["summary_note"] == "AI summaries disabled: set DASHSCOPE_API_KEY"
        assert [p["id"] for p in digest.load_day(s, DAY1)] == ["2411.10001"]
        assert digest.load_day(s, dt.date(2024, 11, 2)) is None
        json.dumps(papers)  # plain JSON-able data
    engine.dispose()


def test_self_links_come_from_the_request_without_public_url(sqlite_url):
    """feeds.public_url unset: the feeds' and the OPML's links name the host and port the request
    came to (here an OS-chosen port, not 127.0.0.1:8000); a bad Host header is refused."""
    config = parse_config({"categories": ["cs.LG", "cs.CL"], "keywords": ["LLM"]})
    assert config.feeds.public_url is None
    engine = make_engine(sqlite_url)
    Base.metadata.create_all(engine)
    publish(session_factory(engine), DAY2, [("2411.20001", "Speculative decoding", ("cs.LG",), 7.5, "Fast.", False)],
            dt.datetime(2024, 11, 28, 6, 0, tzinfo=UTC))
    settings = Settings.from_env(config, Path("config.json"), {"DATABASE_URL": sqlite_url})
    app = create_app(settings, config=config)
    with serve(app) as base:
        for _ in range(2):  # the second answer comes from the cache: still this host's links
            rss = feedparser.parse(get(base, "/feed.xml?category=cs.LG").content)
            assert rss.feed.link == base + "/"
            assert any(l.get("rel") == "self" and l.href == base + "/feed.xml?category=cs.LG" for l in rss.feed.links)
        assert get(base, "/feed.json").json()["feed_url"] == base + "/feed.json"
        other = get(base, "/feed.xml", headers={"Host": "digest.example:8013"})
        assert "http://digest.example:8013/feed.xml" in other.text and base not in other.text
        assert base + "/feed.xml" in get(base, "/feed.xml").text  # not the other host's cached copy
        for _ in range(2):  # now both copies come from the WSGI fast path, each with its own links
            again = get(base, "/feed.xml", headers={"Host": "digest.example:8013"}).text
            assert "http://digest.example:8013/feed.xml" in again and base not in again
            assert base + "/feed.xml" in get(base, "/feed.xml").text
        _stamp, _snap, entries = app.extensions["arxiv_bot"].cache_for_path("/feed.xml").current()
        assert ("raw", "/feed.xml", "", "http", "digest.example:8013") in entries
        bad = get(base, "/feed.xml", headers={"Host": "evil.example/<script>"})
        assert bad.status_code == 400 and "<script>" not in bad.text
        opml = get(base, "/feeds.opml")
        assert opml.status_code == 200 and opml.headers["Content-Type"].startswith("text/x-opml")
        from lxml import etree

        outlines = etree.fromstring(opml.content).findall(".//outline[@type='rss']")
        assert [(o.get("xmlUrl"), o.get("htmlUrl")) for o in outlines] == [
            (base + "/feed.xml", base + "/"),
            (base + "/feed.xml?category=cs.LG", base + "/?category=cs.LG"),
            (base + "/feed.xml?category=cs.CL", base + "/?category=cs.CL")]
    engine.dispose()


def test_page_header_feeds_views_and_error_pages(site):
    base, _ = site
    page = get(base, "/?category=cs.CL").text
    header = page.split("<header", 1)[1].split("</header>", 1)[0]
    assert "Subscribe to cs.CL:" in header
    for route in ("feed.xml", "atom.xml", "feed.json"):
        assert f'href="/{route}?category=cs.CL"' in header
    assert 'href="/feed.xml"' in header and 'href="/feeds.opml"' in header
    assert '<link rel="alternate" type="application/rss+xml" title="RSS" href="/feed.xml?category=cs.CL">' in page
    # The digest's notice once at the top: one paper has a summary, two do not.
    assert page.count("set DASHSCOPE_API_KEY") <= 1
    full = get(base, "/").text
    assert full.count('class="notice"') == 1 and "AI summaries for 1 of these 3 papers" in full
    assert 'rel="prev" href="/day/2024-11-27"' in full and "(abstract)" not in full
    # Sorting and the compact view are query parameters (server-side: no JavaScript).
    by_cat = get(base, "/?sort=category").text
    assert by_cat.index("Parsing with transformers") < by_cat.index("Speculative decoding")  # cs.CL < cs.LG
    compact = get(base, "/?view=compact").text
    assert '<ol class="compact">' in compact and 'class="paper"' not in compact
    assert get(base, "/day/2024-11-27?view=compact").status_code == 200
    bad = get(base, "/?sort=random")
    assert bad.status_code == 400 and "sort: expected one of score, category, date" in bad.text
    # An error page is a whole page: header with the feeds, footer, a way back.
    missing = get(base, "/no/such/page")
    assert missing.status_code == 404 and missing.headers["Content-Security-Policy"].startswith("default-src 'none'")
    for piece in ('<a class="brand" href="/">', 'href="/feed.xml">RSS</a>', 'href="/atom.xml">Atom</a>',
                  'href="/feed.json">JSON Feed</a>', 'href="/papers.json">papers.json</a>', "<footer",
                  '<link rel="stylesheet" href="/static/style.css">', "<h1>404 Not Found</h1>"):
        assert piece in missing.text, piece
    css = get(base, "/static/style.css")
    from shared.render.html import stylesheet

    assert css.text == stylesheet() and "prefers-color-scheme: dark" in css.text and "@media print" in css.text

"""Backfill of missed days through the real fetch_pass handler, over HTTP against the arXiv
stand-in (feed + paged query API), on SQLite and PostgreSQL; and through the real CLI
(`arxiv-bot run`), including the query API's short and empty pages.

The stand-in's query API serves the recorded day's papers (the ones the feed also lists) plus a
copy with shifted ids (papers only the backfill can find), with submission dates spread over
2024-11-21..27; the feed is Thursday 2024-11-28.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
from urllib.parse import parse_qsl, urlencode

import pytest
from sqlalchemy import create_engine, func, select

from services.fetcher import backfill
from services.fetcher import client as client_mod
from services.fetcher.backfill import Span, backfill_spans
from services.fetcher.client import ArxivClient
from services.fetcher.handlers import fetch_pass
from shared import names, passes
from shared.arxiv_pacing import LocalPacer
from shared.db import ensure_schema
from shared.models import PASS_PUBLISHED, PASS_SCORING, FetchWatermark, Paper, Pass, PassItem
from shared.runtime import Runtime
from shared.settings import load
from tests.procs import Stack, write_config
from tests.standins import arxiv_feeds as feeds
from tests.standins.arxiv import ArxivStandin

CATS = ("cs.AI", "cs.CL", "cs.DC", "cs.LG")
DAY = dt.date(2024, 11, 28)
PAGE = 60


class Outbox:
    """The dispatcher of these tests: keeps what fetch_pass enqueues for the scorer."""

    def __init__(self):
        self.sent: list[tuple[str, dict]] = []

    def send(self, task, kwargs, countdown=None):
        self.sent.append((task, kwargs))


@pytest.fixture
def arxiv(tmp_path):
    shifted = feeds.write_shifted_day(feeds.DEFAULT_DAY, tmp_path / "shifted.xml")
    with ArxivStandin() as standin:
        standin.add_api_day(shifted)
        yield standin


def make_rt(tmp_path, db_url, arxiv, days_back=7) -> Runtime:
    cfg = write_config(tmp_path, categories=list(CATS), days_back=days_back,
                       fetch={"min_interval_seconds": 0.0, "api_page_size": PAGE})
    config, settings = load(cfg, {"DATABASE_URL": db_url, "ARXIV_RSS_URL": arxiv.rss_url,
                                  "ARXIV_API_URL": arxiv.api_url})
    rt = Runtime(config, settings, dispatcher=Outbox())
    ensure_schema(rt.engine)
    return rt


def run_pass(rt) -> int:
    with rt.session() as s:
        p, created, _work = passes.begin(s, "test", False)
        assert created
        pass_id = p.id
    fetch_pass(rt, pass_id)
    return pass_id


def api_requests(arxiv) -> list[dict]:
    return [dict(parse_qsl(q)) for _, path, q in arxiv.requests if path == "/api/query"]


@functools.cache
def feed_ids() -> frozenset[str]:
    """Ids the 4-category feed lists, from the raw recorded day (any category configured)."""
    day = feeds.load_day(feeds.DEFAULT_DAY)
    return frozenset(it.id for it in day.items if set(it.categories) & set(CATS))


def expected_api(arxiv, start: dt.date, end: dt.date) -> dict[str, list]:
    """Per category, the dataset's papers submitted in [start, end], in submission order."""
    return {cat: [p for p in arxiv.api_papers if cat in p.categories and start <= p.submitted.date() <= end]
                  for cat in CATS}


def check_requests(arxiv, start: dt.date, end: dt.date) -> None:
    """One query for all four categories, paged (PAGE results a request) to its last result."""
    want = expected_api(arxiv, start, end)
    union = {p.id for papers in want.values() for p in papers}
    got = api_requests(arxiv)
    assert len(union) > 2 * PAGE  # the test needs paging
    query = (f"(cat:cs.AI OR cat:cs.CL OR cat:cs.DC OR cat:cs.LG) AND "
             f"submittedDate:[{start:%Y%m%d}0000 TO {end:%Y%m%d}2359]")
    assert got == [{"search_query": query, "sortBy": "submittedDate", "sortOrder": "ascending",
                    "start": str(offset), "max_results": str(PAGE)} for offset in range(0, len(union), PAGE)]


def test_first_run_backfills_days_back_through_paged_queries(tmp_path, db_url, arxiv):
    rt = make_rt(tmp_path, db_url, arxiv, days_back=7)
    pass_id = run_pass(rt)

    # One feed request, then one paged date-range query for all categories: 2024-11-21..26 (D-7..D-2).
    assert [path for _, path, _ in arxiv.requests][0] == "/rss/cs.AI+cs.CL+cs.DC+cs.LG"
    start, end = dt.date(2024, 11, 21), dt.date(2024, 11, 26)
    check_requests(arxiv, start, end)

    in_range = {p.id: p for papers in expected_api(arxiv, start, end).values() for p in papers}
    fresh = {i for i in in_range if i not in feed_ids()}
    assert fresh and all(i.startswith("2412.") for i in fresh)  # only the shifted copies are news
    with rt.session() as s:
        stored = dict(s.execute(select(Paper.id, Paper.version)).all())
        assert set(stored) == feed_ids() | fresh
        assert {i: stored[i] for i in fresh} == {i: in_range[i].version for i in fresh}
        items = s.execute(select(PassItem.paper_id, PassItem.announce_type, PassItem.announced)
                          .where(PassItem.pass_id == pass_id)).all()
        assert len(items) == len({r.paper_id for r in items}) == len(feed_ids() | fresh)
        kinds = {r.paper_id: r.announce_type for r in items}
        for i in fresh:  # types as arXiv would give them for the configured set
            p = in_range[i]
            primary_in = p.categories[0] in CATS
            want = ("new" if primary_in else "cross") if p.version == 1 else \
                ("replace" if primary_in else "replace-cross")
            assert kinds[i] == want, (i, p.categories, p.version)
        dates = {r.paper_id: r.announced for r in items}
        assert all(start <= dates[i] <= end for i in fresh)
        p = s.get(Pass, pass_id)
        assert p.status == PASS_SCORING and p.fetched == len(items) and p.day == DAY
        assert f"{len(fresh)} papers of missed days added" in p.note
        marks = dict(s.execute(select(FetchWatermark.category, FetchWatermark.last_day)).all())
        assert marks == {cat: DAY for cat in CATS}
    sent = [slug for task, kw in rt.dispatcher.sent if task == names.SCORE_PROFILES for slug in kw["profiles"]]
    assert sent == ["default"]  # every profile scores the whole pass: feed and backfill

    # Watermark = yesterday: the common case is exactly one request, and nothing is added twice.
    with rt.session() as s:
        passes.finish(s, pass_id, PASS_PUBLISHED, from_status=PASS_SCORING)
        for mark in s.scalars(select(FetchWatermark)):
            mark.last_day = DAY - dt.timedelta(days=1)
    before = len(arxiv.requests)
    second = run_pass(rt)
    assert [path for _, path, _ in arxiv.requests[before:]] == ["/rss/cs.AI+cs.CL+cs.DC+cs.LG"]
    with rt.session() as s:
        assert s.scalar(select(func.count()).select_from(Paper)) == len(stored)
        assert s.scalar(select(func.count()).select_from(PassItem).where(PassItem.pass_id == second)) \
            == len(feed_ids())


def test_downtime_gap_from_the_watermark(tmp_path, sqlite_url, arxiv):
    """Watermark Monday 25 Nov, feed Thursday 28: Tue 26 and Wed 27 were missed; the query covers
    the submissions of 24..26 Nov, and papers stored before are not added to the pass again."""
    rt = make_rt(tmp_path, sqlite_url, arxiv, days_back=7)
    old = next(p for p in arxiv.api_papers if p.id.startswith("2412.") and p.submitted.date() == dt.date(2024, 11, 24)
               and p.categories[0] in CATS and p.version == 1)
    with rt.session() as s:
        for cat in CATS:
            s.add(FetchWatermark(category=cat, last_day=dt.date(2024, 11, 25)))
        s.add(Paper(id=old.id, version=1, title=old.title, abstract=old.abstract, authors=old.authors,
                    primary_category=old.categories[0], categories=old.categories))
    pass_id = run_pass(rt)
    start, end = dt.date(2024, 11, 24), dt.date(2024, 11, 26)
    check_requests(arxiv, start, end)
    with rt.session() as s:
        in_pass = set(s.scalars(select(PassItem.paper_id).where(PassItem.pass_id == pass_id)))
    fresh = {p.id for ps in expected_api(arxiv, start, end).values() for p in ps} - feed_ids() - {old.id}
    assert in_pass == feed_ids() | fresh


def test_backfill_spans_rules():
    thu, fri, mon = dt.date(2024, 11, 28), dt.date(2024, 11, 29), dt.date(2024, 12, 2)
    assert backfill_spans({"cs.LG": thu}, fri, 7) == []                        # daily case
    assert backfill_spans({"cs.LG": fri}, mon, 7) == []                        # the weekend
    assert backfill_spans({"cs.LG": thu}, mon, 7) == [Span("cs.LG", dt.date(2024, 11, 27), dt.date(2024, 11, 30))]
    assert backfill_spans({"cs.LG": None}, thu, 3) == [Span("cs.LG", dt.date(2024, 11, 25), dt.date(2024, 11, 26))]
    assert backfill_spans({"cs.LG": None}, thu, 0) == []                       # days_back 0: feed only
    assert backfill_spans({"cs.LG": dt.date(2024, 10, 1)}, thu, 5)[0].start == dt.date(2024, 11, 23)  # capped


def test_failed_backfill_keeps_the_feed_and_retries_next_pass(tmp_path, sqlite_url, arxiv):
    """The first API page is an HTML error page: nothing of the backfill is stored, the day's feed
    is, the watermarks stay unset (so the next pass backfills again) and the note says why."""
    rt = make_rt(tmp_path, sqlite_url, arxiv, days_back=7)
    arxiv.fail_next("slow:0", "html")  # the feed request passes, the first API request fails
    pass_id = run_pass(rt)
    with rt.session() as s:
        p = s.get(Pass, pass_id)
        assert p.status == PASS_SCORING and p.fetched == len(feed_ids())
        assert p.note.startswith("backfill of cs.AI, cs.CL, cs.DC, cs.LG (2024-11-21..2024-11-26) failed, "
                                 "retried next pass: arXiv API query for cs.AI, cs.CL, cs.DC, cs.LG "
                                 "(2024-11-21..2024-11-26), start=0: arXiv API response: got an HTML page"), p.note
        assert set(s.scalars(select(Paper.id))) == feed_ids()
        assert s.scalar(select(func.count()).select_from(FetchWatermark)) == 0
        passes.finish(s, pass_id, PASS_PUBLISHED, from_status=PASS_SCORING)
    second = run_pass(rt)
    with rt.session() as s:
        assert "papers of missed days added" in s.get(Pass, second).note
        assert any(i.startswith("2412.") for i in s.scalars(select(Paper.id)))
        assert set(s.scalars(select(FetchWatermark.last_day))) == {DAY}


# -- through the real CLI (`arxiv-bot run`, embedded, SQLite) ----------------------------------
def cli_stack(tmp_path, arxiv, **fetch) -> Stack:
    home = tmp_path / "cli"
    home.mkdir()
    config = write_config(home, categories=list(CATS), days_back=7, fetch={"min_interval_seconds": 0.0, **fetch})
    env = {"ARXIV_BOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{home / 'bot.db'}",
           "OUTPUT_DIR": str(home / "output"), "ARXIV_RSS_URL": arxiv.rss_url, "ARXIV_API_URL": arxiv.api_url,
           "LLM_API_KEY": "", "DASHSCOPE_API_KEY": "", "BROKER_URL": "", "REDIS_URL": ""}
    return Stack(home, env)


def stored(stack: Stack) -> tuple[set[str], dict, str | None]:
    """(paper ids, watermarks, note of the last pass) from the run's database."""
    engine = create_engine(stack.env["DATABASE_URL"])
    with engine.connect() as conn:
        ids = set(conn.scalars(select(Paper.id)))
        marks = dict(conn.execute(select(FetchWatermark.category, FetchWatermark.last_day)).all())
        note = conn.scalar(select(Pass.note).order_by(Pass.id.desc()))
    engine.dispose()
    return ids, marks, note


def first_run_query(arxiv) -> set[str]:
    """Ids the first run's query (2024-11-21..26, the four categories) matches."""
    in_range = expected_api(arxiv, dt.date(2024, 11, 21), dt.date(2024, 11, 26))
    return {p.id for papers in in_range.values() for p in papers}


def backfill_news(arxiv) -> set[str]:
    """The papers only the first run's backfill can give."""
    return first_run_query(arxiv) - feed_ids()


def api_starts(arxiv) -> list[int]:
    return [int(q["start"]) for q in api_requests(arxiv)]


def test_cli_first_run_backfills_every_category_in_one_request(tmp_path, arxiv):
    stack = cli_stack(tmp_path, arxiv)  # default page size: arXiv's 2000
    res = stack.cli("run")
    assert "published 2024-11-28" in res.stdout
    assert [path for _, path, _ in arxiv.requests] == ["/rss/cs.AI+cs.CL+cs.DC+cs.LG", "/api/query"]
    (query,) = api_requests(arxiv)
    assert query["search_query"] == ("(cat:cs.AI OR cat:cs.CL OR cat:cs.DC OR cat:cs.LG) AND "
                                     "submittedDate:[202411210000 TO 202411262359]")
    assert query["max_results"] == "2000"
    ids, marks, note = stored(stack)
    fresh = backfill_news(arxiv)
    assert fresh and ids == feed_ids() | fresh
    assert marks == {cat: DAY for cat in CATS}
    assert f"{len(fresh)} papers of missed days added" in note
    digest = json.loads((stack.output_dir / "papers.json").read_text())
    assert any(p["id"] in fresh for p in digest)  # backfilled papers compete in today's digest


def test_cli_short_and_empty_pages_are_asked_again(tmp_path, arxiv):
    """arXiv's known glitch: a 200 page with fewer entries than it must hold (half of them; none
    and totalResults 0) before totalResults is reached. Each is requested again, paging goes on
    to the end, and the run stores exactly what a clean run stores."""
    stack = cli_stack(tmp_path, arxiv, api_page_size=PAGE)
    arxiv.fail_next("slow:0", "short", "slow:0", "empty")  # feed fine; page 0 short; page 60 empty
    stack.cli("run")
    fresh = backfill_news(arxiv)
    pages = list(range(0, len(first_run_query(arxiv)), PAGE))
    assert len(pages) > 2
    assert api_starts(arxiv) == [0, 0, PAGE, PAGE, *pages[2:]]
    ids, marks, note = stored(stack)
    assert ids == feed_ids() | fresh
    assert marks == {cat: DAY for cat in CATS}
    assert f"{len(fresh)} papers of missed days added" in note


def test_cli_page_that_stays_short_moves_no_watermark(tmp_path, arxiv):
    """A page still short after every retry: the backfill is incomplete, so nothing of it is
    stored and no watermark moves; the day's feed is published; the next run backfills."""
    stack = cli_stack(tmp_path, arxiv, api_page_size=PAGE, max_retries=2)
    arxiv.fail_next("slow:0", "slow:0", "short", "short", "short")  # page 60 short three times
    res = stack.cli("run")
    assert "published 2024-11-28" in res.stdout
    assert api_starts(arxiv) == [0, PAGE, PAGE, PAGE]  # paging stopped at the short page, not past it
    ids, marks, note = stored(stack)
    assert ids == feed_ids() and marks == {}
    assert ("retried next pass: arXiv API query for cs.AI, cs.CL, cs.DC, cs.LG (2024-11-21..2024-11-26), "
            f"start={PAGE}: a page came back short ({PAGE // 2} of {PAGE} results) after 3 attempts") in note

    stack.cli("run")
    ids, marks, note = stored(stack)
    assert ids == feed_ids() | backfill_news(arxiv)
    assert marks == {cat: DAY for cat in CATS}


def test_queries_are_split_only_where_arxivs_limits_need_it(arxiv, monkeypatch):
    """One query per gap; halved while its URL would be too long, and (against the stand-in, with
    the API's 30,000-result cap lowered to 100) while it matches more than the API returns."""
    start, end = dt.date(2024, 11, 21), dt.date(2024, 11, 26)
    many = sorted(arxiv.known_categories)
    assert len(many) > 100
    queries = backfill.plan_queries([Span(c, start, end) for c in many], arxiv.api_url)
    assert 1 < len(queries) <= 4 and [c for q in queries for c in q.categories] == many
    assert all(len(f"{arxiv.api_url}?{urlencode({'search_query': q.text})}") < client_mod.MAX_URL for q in queries)
    later = [Span("cs.AI", start, end), Span("cs.CL", start, end), Span("cs.LG", dt.date(2024, 11, 25), end)]
    assert [q.categories for q in backfill.plan_queries(later, arxiv.api_url)] == [("cs.AI", "cs.CL"), ("cs.LG",)]

    monkeypatch.setattr(backfill, "API_TOTAL_MAX", 100)
    monkeypatch.setattr(client_mod, "API_TOTAL_MAX", 100)
    with ArxivClient(arxiv.rss_url, arxiv.api_url, LocalPacer(0), "arxiv-bot/0.1 (+test)") as client:
        items = backfill.fetch_backfill(client, [Span(c, start, end) for c in CATS], page_size=2000)
    assert sorted(it.id for it in items) == sorted(first_run_query(arxiv))
    # Each request is the first page of a query: over the cap it is abandoned for its halves,
    # else read whole. The queries read whole partition the result set.
    answers = [feeds.api_query(arxiv.api_papers, q) for q in api_requests(arxiv)]
    assert answers[0][1] > 100 and "OR" in api_requests(arxiv)[0]["search_query"]
    read = [[p.id for p in page] for page, total, _, _ in answers if total <= 100]
    assert 4 <= len(read) < len(answers)
    assert {i for ids in read for i in ids} == first_run_query(arxiv)  # cross-lists come back twice

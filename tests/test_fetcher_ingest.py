"""upsert_papers on real databases (SQLite and PostgreSQL via the db_url fixture): outcomes,
version history, stale summaries, unordered versions and duplicates in one batch."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from services.fetcher.client import ArxivClient, user_agent_for
from services.fetcher.ingest import upsert_papers
from services.fetcher.rss import parse_rss
from shared.arxiv_pacing import LocalPacer
from shared.models import Base, Paper, PaperVersion, Summary
from tests.standins.arxiv import ArxivStandin
from tests.standins.arxiv_feeds import DEFAULT_DAY, write_replacement_day


@pytest.fixture
def engine(db_url):
    eng = create_engine(db_url)
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def day_items():
    return parse_rss(DEFAULT_DAY.read_bytes()).items


def store(engine, items):
    with Session(engine) as session, session.begin():
        return upsert_papers(session, items)


def versions_of(engine, paper_id):
    with Session(engine) as session:
        return session.scalars(select(PaperVersion.version).where(PaperVersion.paper_id == paper_id)
                               .order_by(PaperVersion.version)).all()


def test_whole_day_then_replacement_day_through_the_standin(engine, tmp_path):
    bump = {"2411.17700": 2, "2411.17838": 3}  # a new paper, a multi-paragraph one
    day2 = write_replacement_day(DEFAULT_DAY, tmp_path / "day2.xml", bump, "Fri, 29 Nov 2024 00:00:00 -0500")
    with ArxivStandin() as arxiv, ArxivClient(arxiv.rss_url, arxiv.api_url, LocalPacer(0),
                                              user_agent_for("test"), max_retries=0) as client:
        first = client.fetch_announcements(["cs", "math"])
        res1 = store(engine, first.items)
        assert sorted(res1.new) == sorted(i.id for i in first.items) and not res1.updated
        assert store(engine, first.items).unchanged == res1.new  # idempotent
        arxiv.set_day(day2)
        second = client.fetch_announcements(["cs", "math"])
    assert {(i.id, i.version, i.announce_type) for i in second.items} == {
        ("2411.17700", 2, "replace"), ("2411.17838", 3, "replace")}
    res2 = store(engine, second.items)
    assert sorted(res2.updated) == sorted(bump) and not res2.new and not res2.unchanged
    with Session(engine) as session:
        paper = session.get(Paper, "2411.17838")
        assert paper.version == 3
        assert paper.announced == dt.date(2024, 11, 28)          # first announcement kept
        assert paper.version_announced == dt.date(2024, 11, 29)  # this version's day
        assert paper.abstract.count("\n") == 1 and paper.primary_category == "cs.LG"
        assert isinstance(paper.authors, list) and paper.authors
        assert session.scalar(select(func.count()).select_from(Paper)) == len(first.items)
    assert versions_of(engine, "2411.17838") == [1, 3]
    assert versions_of(engine, "2411.17700") == [1, 2]


def test_new_version_marks_older_summaries_stale(engine, day_items):
    a, b = day_items[0], day_items[1]
    store(engine, [a, b])
    with Session(engine) as session, session.begin():
        for paper in (a, b):
            session.add(Summary(paper_id=paper.id, version=1, model="m", prompt_hash="h", language="en",
                                input_mode="abstract", status="done"))
    res = store(engine, [dataclasses.replace(a, version=2, title="Revised title")])
    assert res.updated == [a.id]
    with Session(engine) as session:
        stale = dict(session.execute(select(Summary.paper_id, Summary.stale)).all())
        assert stale == {a.id: True, b.id: False}
        assert session.get(Paper, a.id).title == "Revised title"


def test_lower_version_never_overwrites(engine, day_items):
    item = day_items[5]
    v3 = dataclasses.replace(item, version=3, title="Third version")
    v2 = dataclasses.replace(item, version=2, title="Second version")
    assert store(engine, [v3]).new == [item.id]
    res = store(engine, [v2])  # arrives later, from an older feed
    assert res.unchanged == [item.id] and not res.updated
    with Session(engine) as session:
        paper = session.get(Paper, item.id)
        assert (paper.version, paper.title) == (3, "Third version")
    assert versions_of(engine, item.id) == [2, 3]  # the older version is still part of the history


def test_duplicates_in_one_batch_keep_the_highest_version(engine, day_items):
    item = day_items[7]
    batch = [dataclasses.replace(item, version=v, title=f"v{v}") for v in (1, 3, 2)] + [day_items[8]]
    res = store(engine, batch)
    assert res.new == [item.id, day_items[8].id]
    with Session(engine) as session:
        assert session.get(Paper, item.id).title == "v3"
    assert versions_of(engine, item.id) == [1, 2, 3]


def test_nothing_committed_by_upsert(engine, day_items):
    with Session(engine) as session:
        session.begin()
        upsert_papers(session, day_items[:10])
        session.rollback()  # the caller owns the transaction
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Paper)) == 0

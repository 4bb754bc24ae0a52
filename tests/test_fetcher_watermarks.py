"""Watermarks never move back (docs/ARCHITECTURE.md, "Backfill"): a pass over an older announcement
day than a category's watermark (a re-run of a recorded day, arXiv serving a stale feed) stores
the day and leaves that watermark where it was, while other categories' watermarks move forward
to the day; an empty day leaves every watermark alone. Through the real fetch_pass handler over
HTTP against the arXiv stand-in, on SQLite and PostgreSQL.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from shared import passes
from shared.models import PASS_PUBLISHED, PASS_SCORING, FetchWatermark, Pass
from tests.test_fetcher_backfill import CATS, DAY, arxiv, feed_ids, make_rt, run_pass  # noqa: F401 (fixture)

LATER, EARLIER = dt.date(2024, 12, 2), dt.date(2024, 11, 27)


def marks(rt) -> dict[str, dt.date]:
    with rt.session() as s:
        return dict(s.execute(select(FetchWatermark.category, FetchWatermark.last_day)).all())


def test_a_pass_for_an_older_day_leaves_newer_watermarks(tmp_path, db_url, arxiv):  # noqa: F811 (fixture)
    rt = make_rt(tmp_path, db_url, arxiv, days_back=0)
    with rt.session() as s:
        s.add_all([FetchWatermark(category="cs.AI", last_day=LATER), FetchWatermark(category="cs.LG", last_day=EARLIER),
                   FetchWatermark(category="cs.DC", last_day=DAY)])
    pass_id = run_pass(rt)  # the recorded feed: Thursday 2024-11-28
    with rt.session() as s:
        p = s.get(Pass, pass_id)
        assert p.day == DAY and p.fetched == len(feed_ids())  # the day itself is stored
    assert marks(rt) == {"cs.AI": LATER, "cs.CL": DAY, "cs.DC": DAY, "cs.LG": DAY}
    assert [path for _, path, _ in arxiv.requests] == ["/rss/cs.AI+cs.CL+cs.DC+cs.LG"]  # no backfill

    # An empty day (a holiday) moves nothing, forwards or back.
    with rt.session() as s:
        passes.finish(s, pass_id, PASS_PUBLISHED, from_status=PASS_SCORING)
    arxiv.empty_day = True
    run_pass(rt)
    assert marks(rt) == {"cs.AI": LATER, "cs.CL": DAY, "cs.DC": DAY, "cs.LG": DAY}

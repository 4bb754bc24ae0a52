"""The publisher's HTML files work as files: every link of index.html and the day pages resolves
among the published files (no link to a day without a page, no form), the previous day's page
is written again with its "next" link, and the stylesheet is the package's static file.

Real publish_profiles on a real SQLite database (two earlier publications, then a third pass)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from lxml import etree

from services.publisher.handlers import publish_profiles
from shared.db import make_engine, session_factory
from shared.models import Base, Pass, PassItem, PassProfile
from shared.render.html import stylesheet
from shared.runtime import Runtime
from shared.settings import Settings
from tests.test_web import CONFIG, UTC, publish


def _links(path: Path) -> list[str]:
    """The page's local links (not arXiv's, not the site's absolute feedback links, not anchors)."""
    tree = etree.HTML(path.read_bytes())
    site = CONFIG.feeds.public_url + "/"
    return [h for h in tree.xpath("//a/@href | //link/@href") if not h.startswith(("https://", "#", site))]


def test_published_pages_link_only_among_the_files(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    out = tmp_path / "output"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    sm = session_factory(engine)
    # Two days published before this feature existed (no day pages on disk) ...
    publish(sm, dt.date(2024, 11, 26), [("2411.00001", "Oldest", ("cs.LG",), 5.0, "Old.", False)],
            dt.datetime(2024, 11, 26, 6, 0, tzinfo=UTC))
    publish(sm, dt.date(2024, 11, 27), [("2411.10001", r"Yesterday's Schr\"odinger", ("cs.LG",), 6.0, "Y.", False)],
            dt.datetime(2024, 11, 27, 6, 0, tzinfo=UTC))
    # ... then today's pass, ready to publish.
    publish(sm, dt.date(2024, 11, 28), [("2411.20001", "Today $O(n^2)$", ("cs.CL",), 7.0, "T.", True)],
            dt.datetime(2024, 11, 28, 6, 0, tzinfo=UTC))
    with sm.begin() as s:  # (its Publication row is rewritten by publish_profiles)
        today = s.query(Pass).filter(Pass.day == dt.date(2024, 11, 28)).one()
        today.status = "publishing"
        today.active = 1
        pass_id = today.id
        assert s.query(PassItem).filter(PassItem.pass_id == pass_id).count() == 1
        s.get(PassProfile, (pass_id, "default")).published = False
    settings = Settings.from_env(CONFIG, Path("config.json"), {"DATABASE_URL": url, "OUTPUT_DIR": str(out)})
    publish_profiles(Runtime(CONFIG, settings, engine=engine), pass_id, ["default"])

    index, today_page, yesterday = out / "index.html", out / "day" / "2024-11-28.html", out / "day" / "2024-11-27.html"
    assert index.is_file() and today_page.is_file() and yesterday.is_file()
    assert not (out / "day" / "2024-11-26.html").exists()  # not rewritten: older pages stay as they were
    assert (out / "static" / "style.css").read_text() == stylesheet()
    for page in (index, today_page, yesterday):
        text = page.read_text()
        assert "<form" not in text and "feeds.opml" not in text and "?category=" not in text
        for href in _links(page):
            target = (page.parent / href).resolve()
            assert target.is_file(), f"{page.name}: {href} does not resolve among the published files"
    text = index.read_text()
    assert 'href="day/2024-11-27.html"' in text and 'rel="prev"' in text
    assert "2024-11-26.html" not in text  # that day has no page among the files: not linked
    assert "Today O(n²)" in text and "$O" not in text
    assert '<a rel="next" href="../day/2024-11-28.html">' in yesterday.read_text()
    assert "Schrödinger" in yesterday.read_text() and "Schr\\" not in yesterday.read_text()
    assert 'href="../static/style.css"' in today_page.read_text()
    # Feedback: links to the site's confirmation pages (feeds.public_url is set), never a form.
    rate = etree.HTML(index.read_bytes()).xpath("//a[@class='rate']/@href")
    assert len(rate) == 2 and all(h.startswith("http://digest.example/feedback?t=") for h in rate)
    # The feeds name no host they do not know (feeds.public_url is set in CONFIG: they use it).
    assert "<link>http://digest.example/</link>" in (out / "feed.xml").read_text()
    engine.dispose()

"""The publisher on a real database: a batch of profiles published exactly once however many
publishers race for it, the pass closed by the last batch, only changed files rewritten, stale
temporaries of a killed publisher removed, and the outputs of unconfigured profiles deleted."""
from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

import pytest

from services.publisher.handlers import publish_profiles
from services.publisher.output import remove_stale_temporaries, write_if_changed
from shared.config import parse_config
from shared.db import ensure_schema
from shared.models import PASS_PUBLISHED, PASS_PUBLISHING, Paper, Pass, PassProfile, Publication
from shared.runtime import Runtime
from shared.settings import Settings
from tests.seed import digest_item

DAY = dt.date(2024, 11, 28)
PROFILES = {f"p{n}": {"categories": ["cs.LG"], "keywords": ["LLM"]} for n in range(6)}


def _world(db_url: str, out: Path, profiles: dict) -> tuple[Runtime, int]:
    config = parse_config({"profiles": profiles, "feeds": {"public_url": "https://d.example"}})
    settings = Settings.from_env(config, Path("config.json"), {"DATABASE_URL": db_url, "OUTPUT_DIR": str(out)})
    rt = Runtime(config, settings)
    ensure_schema(rt.engine)
    with rt.session() as s:
        p = Pass(status=PASS_PUBLISHING, active=1, day=DAY, fetched=2)
        s.add(p)
        s.flush()
        s.add_all(Paper(id=pid, version=1, title=f"Title {pid}", abstract="LLM abstract.", authors=["A. B"],
                        primary_category="cs.LG", categories=["cs.LG"], announced=DAY) for pid in ("2411.00001",
                                                                                                  "2411.00002"))
        s.flush()
        for slug in profiles:
            for rank, pid in enumerate(("2411.00001", "2411.00002"), 1):
                digest_item(s, p.id, pid, day=DAY, rank=rank, score=3.0 - rank, matched=["LLM"], profile=slug)
            s.get(PassProfile, (p.id, slug)).published = False
        pass_id = p.id
    return rt, pass_id


def test_racing_publishers_publish_each_profile_once_and_close_the_pass_once(tmp_path, db_url, caplog):
    import logging
    import re

    caplog.set_level(logging.INFO, logger="services.publisher.handlers")
    out = tmp_path / "out"
    rt, pass_id = _world(db_url, out, PROFILES)
    slugs = sorted(PROFILES)
    barrier = threading.Barrier(4)
    errors = []

    def publisher(batch):
        try:
            barrier.wait()
            publish_profiles(rt, pass_id, batch)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # Four publishers at once, two of them with the same batch (a redelivered message).
    batches = [slugs[:3], slugs[:3], slugs[3:], slugs[3:]]
    threads = [threading.Thread(target=publisher, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with rt.session() as s:
        assert s.get(Pass, pass_id).status == PASS_PUBLISHED
        pubs = s.query(Publication).filter(Publication.pass_id == pass_id).all()
        assert sorted(p.profile for p in pubs) == slugs  # one publication per profile
        assert all(r.published for r in s.query(PassProfile).filter(PassProfile.pass_id == pass_id))
    for slug in slugs:
        assert (out / "p" / slug / "papers.json").is_file()
    assert not list(out.rglob(".*.tmp"))
    # Each profile was rendered by exactly one publisher, and the pass closed once.
    won = [int(m.group(1)) for r in caplog.records if (m := re.search(r"published (\d+) profiles", r.getMessage()))]
    assert sum(won) == len(slugs), won
    assert sum(r.getMessage() == f"pass {pass_id}: published" for r in caplog.records) == 1
    rt.engine.dispose()


def test_only_changed_files_are_written_and_stale_temporaries_go(tmp_path):
    target = tmp_path / "f.txt"
    assert write_if_changed(target, "one") is True
    before = target.stat().st_mtime_ns
    time.sleep(0.01)
    assert write_if_changed(target, "one") is False and target.stat().st_mtime_ns == before
    assert write_if_changed(target, "two") is True and target.read_text() == "two"
    old = tmp_path / ".index.html.abc.tmp"
    new = tmp_path / ".feed.xml.def.tmp"
    old.write_text("half")
    new.write_text("half")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert remove_stale_temporaries(tmp_path) == 1  # a live publisher's fresh temporary stays
    assert not old.exists() and new.exists()


def test_unconfigured_profiles_lose_their_outputs(tmp_path, sqlite_url):
    out = tmp_path / "out"
    stale = out / "p" / "gone"
    stale.mkdir(parents=True)
    (stale / "papers.json").write_text("[]")
    rt, pass_id = _world(sqlite_url, out, {"kept": PROFILES["p0"]})
    publish_profiles(rt, pass_id, ["kept"])
    assert not stale.exists() and (out / "p" / "kept" / "README.md").is_file()
    # The default profile (the only public one) is also at the root, with the same digest.
    assert (out / "papers.json").read_bytes() == (out / "p" / "kept" / "papers.json").read_bytes()
    rt.engine.dispose()


@pytest.mark.parametrize("again", [1, 2])
def test_a_finished_pass_is_left_alone(tmp_path, sqlite_url, again):
    out = tmp_path / "out"
    rt, pass_id = _world(sqlite_url, out, {"a": PROFILES["p0"]})
    publish_profiles(rt, pass_id, ["a"])
    first = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    for _ in range(again):  # redelivered messages after the pass ended
        publish_profiles(rt, pass_id, ["a"])
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == first
    rt.engine.dispose()

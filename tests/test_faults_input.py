"""Bad input (issue 8 req 5): a malformed config.json, and hostile or broken feed content served
over real HTTP (tests.faults.RawFeed) to a real `arxiv-bot run`.

What the fetcher does, per case: broken items (no description, no title, no category, an empty
<item>) are skipped with a warning naming them and the rest of the day is published; invalid
UTF-8 is replaced and the day kept; a 10 MB abstract is cut with a warning; a DTD (entity bomb)
rejects the whole response with one clear line.
"""
from __future__ import annotations

import json
import re
import sqlite3

import pytest

from tests.faults import RawFeed, assemble, check_invariants, make_stack, passes, recorded_feed
from tests.procs import Stack
from tests.standins.llm import LLMStandin

BOMB = (b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\n')


def _strip(item: bytes, tag: bytes) -> bytes:
    return re.sub(rb"<%s[^>]*>.*?</%s>\s*" % (tag, tag), b"", item, flags=re.S)


def _id(item: bytes) -> str:
    return re.search(rb"arXiv:(\S+?)v\d", item).group(1).decode()


def _run(tmp_path, body: bytes, sqlite_url: str, name: str = "run"):
    with RawFeed(body) as feed, LLMStandin() as llm:
        stack = make_stack(tmp_path, sqlite_url, feed, llm, name=name)
        stack.env.update(LLM_API_KEY="", LOG_LEVEL="WARNING")
        res = stack.cli("run", "--no-summaries", check=False, timeout=180)
    return stack, res


def _paper_ids(sqlite_url: str) -> set[str]:
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        return {r[0] for r in db.execute("SELECT id FROM papers")}


@pytest.mark.parametrize("text, why", [("{\"categories\": [\"cs.AI\"],", "not valid JSON"),
                                       ("{\"categories\": \"cs.AI\", \"max_papers\": -3}", "max_papers")])
def test_malformed_config_exits_2_and_starts_nothing(tmp_path, text, why):
    cfg = tmp_path / "config.json"
    cfg.write_text(text)
    db = tmp_path / "db.sqlite"
    stack = Stack(tmp_path, {"ARXIV_BOT_CONFIG": str(cfg), "DATABASE_URL": f"sqlite:///{db}",
                             "OUTPUT_DIR": str(tmp_path / "out"), "BROKER_URL": "redis://127.0.0.1:6379/15"})
    for args in (["run"], ["trigger"], ["worker", "fetcher"], ["serve", "--port", "1"]):
        res = stack.cli(*args, check=False, timeout=60)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("arxiv-bot: error:") and "config.json" in lines[0], lines
        assert "Traceback" not in res.stderr
    assert not db.exists() and not (tmp_path / "out").exists()


def test_broken_items_are_skipped_and_the_day_published(tmp_path, sqlite_url):
    template, items = recorded_feed()
    no_desc, empty = items[6], items[8]
    items[6] = _strip(items[6], b"description")
    items[8] = b"<item></item>"
    items[9] = _strip(items[9], b"dc:creator")  # no authors: kept, with none
    items[10] = _strip(_strip(items[10], b"link"), b"guid")  # no link/guid: kept (the id is in the description)
    stack, res = _run(tmp_path, assemble(template, items), sqlite_url)
    assert res.returncode == 0, res.stderr
    assert "published 2024-11-28" in res.stdout
    ids = _paper_ids(sqlite_url)
    assert _id(no_desc) not in ids and _id(empty) not in ids
    assert {_id(items[9]), _id(items[10])} <= ids
    warnings = [l for l in res.stderr.splitlines() if "skipping broken item" in l]
    assert len(warnings) == 2 and "oai:arXiv.org:" + _id(no_desc) in warnings[0], warnings
    check_invariants(sqlite_url, stack.output_dir)


def test_items_missing_title_or_categories_are_logged(tmp_path, sqlite_url):
    template, items = recorded_feed()
    all_ids = {_id(it) for it in items}
    no_title, no_cats = _id(items[5]), _id(items[7])
    items[5] = _strip(items[5], b"title")
    items[7] = _strip(items[7], b"category")
    stack, res = _run(tmp_path, assemble(template, items), sqlite_url)
    assert res.returncode == 0, res.stderr
    assert _paper_ids(sqlite_url) == all_ids - {no_title, no_cats}  # skipped, and only those
    skipped = [line for line in res.stderr.splitlines() if "skipping item" in line]
    assert len(skipped) == 2, res.stderr
    assert f"skipping item {no_title}: it has no title" in skipped[0]
    assert f"skipping item {no_cats}: it has no category" in skipped[1]
    check_invariants(sqlite_url, stack.output_dir)


def test_entity_bomb_is_refused_with_one_line(tmp_path, sqlite_url):
    template, items = recorded_feed()
    body = assemble(template, items).replace(b"<rss ", BOMB + b"<rss ", 1)
    stack, res = _run(tmp_path, body, sqlite_url)
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("arxiv-bot: error: pass 1 failed: arXiv response unusable") and "DTD" in last
    assert "Traceback" not in res.stderr and "lol" not in res.stderr
    assert passes(sqlite_url) == [(1, "failed")] and not _paper_ids(sqlite_url)
    check_invariants(sqlite_url, stack.output_dir, status="failed")


def test_invalid_utf8_in_one_item_keeps_the_rest_of_the_day(tmp_path, sqlite_url):
    template, items = recorded_feed()
    all_ids = {_id(it) for it in items}
    broken = _id(items[5])
    title = re.search(rb"<title>(.*?)</title>", items[5], re.S).group(1).decode()
    items[5] = items[5].replace(b"<title>", b"<title>\xff\xfe broken ")
    stack, res = _run(tmp_path, assemble(template, items), sqlite_url)
    assert res.returncode == 0, res.stderr
    assert _paper_ids(sqlite_url) == all_ids  # the broken item is kept too
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        (stored,) = db.execute("SELECT title FROM papers WHERE id = ?", (broken,)).fetchone()
    assert stored == "\ufffd\ufffd broken " + " ".join(title.split())  # repaired: bad bytes -> U+FFFD
    assert "invalid UTF-8 replaced" in res.stderr
    check_invariants(sqlite_url, stack.output_dir)


def test_10mb_abstract_is_truncated_and_the_day_published(tmp_path, sqlite_url):
    template, items = recorded_feed()
    big = _id(items[5])
    items[5] = items[5].replace(b"Abstract: ", b"Abstract: " + b"words " * (10 * 1024 * 1024 // 6 + 1), 1)
    stack, res = _run(tmp_path, assemble(template, items), sqlite_url)
    assert res.returncode == 0, res.stderr
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        (length,) = db.execute("SELECT length(abstract) FROM papers WHERE id = ?", (big,)).fetchone()
    assert length < 1_000_000 and big in res.stderr
    check_invariants(sqlite_url, stack.output_dir)
    assert json.loads((stack.output_dir / "papers.json").read_text())

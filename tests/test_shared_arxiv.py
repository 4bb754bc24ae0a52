"""shared.arxiv (ids, categories, URLs) and shared.errors (Retry-After, first lines): the one
home of arXiv's vocabulary, checked on real ids from the recorded responses and on hostile text."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import arxiv
from shared.errors import first_line, retry_after_seconds


@pytest.mark.parametrize("text, expected", [
    ("2411.17700v2", ("2411.17700", 2)),
    ("2411.17700", ("2411.17700", None)),
    ("0704.0001v1", ("0704.0001", 1)),
    ("hep-th/9901001v1", ("hep-th/9901001", 1)),
    ("math.GT/0309136", ("math.GT/0309136", None)),
    ("cs/0503050v1", ("cs/0503050", 1)),
])
def test_real_ids_split(text, expected):
    assert arxiv.split_id(text) == expected


@pytest.mark.parametrize("text", [
    "2411.90007)![x](http://evil/x.png)", "2411.17700v2)", "javascript:alert(1)", "2411.17700v0", "v2",
    "2411.177", "2411.17700 v2", "HEP-TH/9901001", "../../etc/passwd", "2411.17700v2<script>", "",
])
def test_hostile_or_malformed_ids_are_refused(text):
    assert arxiv.split_id(text) is None


def test_find_id_in_what_users_type():
    assert arxiv.find_id("arXiv:2411.18050v2") == "2411.18050"
    assert arxiv.find_id("https://arxiv.org/abs/2411.18050v3") == "2411.18050"
    assert arxiv.find_id("https://arxiv.org/pdf/2411.18050v1.pdf") == "2411.18050"
    assert arxiv.find_id("hep-th/9901001v2") == "hep-th/9901001"
    assert arxiv.find_id("sparse attention") is None


@pytest.mark.parametrize("cat, ok", [
    ("cs.LG", True), ("cs", True), ("astro-ph.CO", True), ("cond-mat.mes-hall", True), ("math-ph", True),
    ("CS.LG", False), ("cs.LG)", False), ("cs LG", False), ("", False), ("cs.", False), ("javascript:x", False),
])
def test_categories(cat, ok):
    assert arxiv.is_category(cat) is ok


def test_urls_are_built_from_validated_parts():
    assert arxiv.abs_url("2411.17700") == "https://arxiv.org/abs/2411.17700"
    assert arxiv.pdf_url("hep-th/9901001", 2) == "https://arxiv.org/pdf/hep-th/9901001v2"
    assert arxiv.pdf_url("2411.17700", 1, "http://127.0.0.1:8001/pdf/") == "http://127.0.0.1:8001/pdf/2411.17700v1"
    assert arxiv.html_url("2508.08468", 6) == "https://arxiv.org/html/2508.08468v6"


@given(st.text(max_size=60))
def test_any_stored_id_stays_inside_its_url(text):
    url = arxiv.abs_url(text)
    assert url.startswith("https://arxiv.org/abs/")
    tail = url.removeprefix("https://arxiv.org/abs/")
    assert not any(c in tail for c in "<>\"' ()[]:\n\\?#")


def test_retry_after_forms():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)
    assert 25 < retry_after_seconds(soon.strftime("%a, %d %b %Y %H:%M:%S GMT")) <= 30
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert retry_after_seconds({}) is None and retry_after_seconds({"retry-after": "inf"}) is None


@given(st.text(max_size=40))
def test_retry_after_never_raises_or_goes_negative(value):
    out = retry_after_seconds(value)
    assert out is None or 0.0 <= out < float("inf")


def test_first_line():
    class Wrapped(Exception):
        orig = ValueError("connection refused\nDETAIL: more")
    assert first_line(Wrapped("x")) == "connection refused"
    assert first_line(RuntimeError("")) == "RuntimeError"


# --- announce types relative to a set of categories ------------------------------------------

def _item(kind, version, *categories):
    from types import SimpleNamespace

    return SimpleNamespace(announce_type=kind, version=version, categories=list(categories))


@pytest.mark.parametrize("kind, version, categories, expected", [
    # The feed's own type is kept where arXiv's rule keeps it: a 'cross' stays a cross-list
    # (one added to an older paper), whatever the primary.
    ("cross", 1, ("cs.LG", "stat.ML"), "cross"),
    ("cross", 3, ("cs.LG",), "cross"),
    # A paper revised before its first announcement is announced 'new' at v2: still new.
    ("new", 2, ("cs.LG",), "new"),
    ("new", 2, ("stat.ML", "cs.LG"), "cross"),
    ("replace", 2, ("stat.ML", "cs.LG"), "replace-cross"),
    ("replace-cross", 4, ("cs.LG", "stat.ML"), "replace"),
    # Query-API items carry no type: v1 is new, any later version a replacement.
    (None, 1, ("cs.LG",), "new"),
    (None, 1, ("stat.ML", "cs.LG"), "cross"),
    (None, 2, ("cs.LG",), "replace"),
    (None, 2, ("stat.ML", "cs.LG"), "replace-cross"),
    (None, 7, ("CS.lg",), "replace"),  # categories compare case-insensitively
    # No valid category left (the parsers drop malformed ones): not primary here.
    (None, 1, (), "cross"),
    ("new", 1, (), "cross"),
])
def test_effective_type_rules(kind, version, categories, expected):
    assert arxiv.effective_type(_item(kind, version, *categories), ["cs.LG", "cs.AI"]) == expected


def test_in_set_by_category_or_archive():
    assert arxiv.in_set("cs.LG", ["cs"]) and arxiv.in_set("CS.LG", ["cs.lg"])
    assert arxiv.in_set("hep-th", ["hep-th"]) and not arxiv.in_set("hep-th", ["hep-ph"])
    assert not arxiv.in_set("cs.LG", ["cs.AI", "stat"]) and not arxiv.in_set("stat.ML", [])
    assert arxiv.relevant(_item(None, 1, "stat.ML", "cs.AI"), ["cs.AI"])
    assert not arxiv.relevant(_item(None, 1), ["cs.AI"])

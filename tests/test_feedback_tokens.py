"""Feedback tokens (shared/feedback_links.py): what they carry, that nothing else passes for one,
and that the same publication gives the same bytes in every process. Hypothesis feeds the
reader arbitrary text: it answers a Vote or BadToken, never anything else."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import profile_keys
from shared.feedback_links import BadToken, FeedbackLinks, make_token, read_token

SECRET = b"s3cret-for-tests"
DAY = 86400
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_round_trip_and_determinism():
    t1 = make_token(SECRET, "systems", "2411.17700", "up", generation=3, issued_at=1_732_780_800)
    t2 = make_token(SECRET, "systems", "2411.17700", "up", generation=3, issued_at=1_732_780_800)
    assert t1 == t2  # the same publication: the same bytes in every process (stable ETags)
    now = int(time.time())
    vote = read_token(SECRET, make_token(SECRET, "systems", "hep-th/9901001", "down", 2, now))
    assert (vote.profile, vote.paper_id, vote.rating, vote.generation, vote.issued_at) == \
        ("systems", "hep-th/9901001", "down", 2, now)
    assert len(t1) < 200 and t1.isascii()


def test_forged_tampered_expired_and_foreign_tokens_are_refused():
    now = int(time.time())
    good = make_token(SECRET, "a", "2411.17700", "up", 1, now)
    assert read_token(SECRET, good).profile == "a"
    payload, stamp, sig = good.split(".")
    # Every single-character change of the signature, the time or the payload is refused (the
    # top bit of a base64 character is always data, never padding: flipping it changes the bytes).
    for i in range(len(good)):
        if good[i] == ".":
            continue
        swapped = good[:i] + B64[(B64.index(good[i]) + 32) % 64] + good[i + 1:]
        with pytest.raises(BadToken):
            read_token(SECRET, swapped)
    other = make_token(SECRET, "b", "2411.17700", "up", 1, now).split(".")[0]
    with pytest.raises(BadToken, match="not valid"):  # another profile's payload, our signature
        read_token(SECRET, f"{other}.{stamp}.{sig}")
    with pytest.raises(BadToken, match="not valid"):  # signed with another deployment's secret
        read_token(b"another-secret", good)
    with pytest.raises(BadToken, match="expired"):
        read_token(SECRET, make_token(SECRET, "a", "2411.17700", "up", 1, now - 91 * DAY))
    assert read_token(SECRET, make_token(SECRET, "a", "2411.17700", "up", 1, now - 89 * DAY)).rating == "up"
    with pytest.raises(BadToken, match="expired"):  # a shorter feedback.link_days
        read_token(SECRET, make_token(SECRET, "a", "2411.17700", "up", 1, now - 8 * DAY), max_age_days=7)
    # A private profile's key is an HMAC under the same SECRET_KEY: it is no feedback token.
    with pytest.raises(BadToken):
        read_token(SECRET, profile_keys.derive(SECRET, "a", 1))
    for junk in ("", "   ", "a.b.c", "x" * 5000, "é.é.é", None):
        with pytest.raises(BadToken):
            read_token(SECRET, junk)


def test_links_for_files_and_pages():
    fb = FeedbackLinks(SECRET, "nlp", 1, int(time.time()), base_url="https://digest.example/sub")
    url = fb.url("2411.17700", "down")
    assert url.startswith("https://digest.example/sub/feedback?t=")
    assert read_token(SECRET, url.split("t=", 1)[1]).rating == "down"
    assert FeedbackLinks(SECRET, "nlp", 1, 0).url("2411.17700", "up") is None  # no public URL: no link
    assert read_token(SECRET, fb.token("2411.17700", "up")).paper_id == "2411.17700"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_reading_arbitrary_text_answers_a_vote_or_bad_token(text):
    try:
        vote = read_token(SECRET, text)
    except BadToken as exc:
        assert "\n" not in str(exc) and str(exc).startswith("feedback link")
    else:  # only a real token could get here, and random text is none
        pytest.fail(f"accepted {text!r}: {vote}")


@settings(max_examples=100, deadline=None)
@given(profile=st.from_regex(r"[a-z0-9][a-z0-9-]{0,39}", fullmatch=True),
       paper=st.from_regex(r"\d{4}\.\d{4,5}|[a-z-]{2,10}/\d{7}", fullmatch=True),
       rating=st.sampled_from(["up", "down"]), generation=st.integers(1, 10**6))
def test_any_vote_survives_the_round_trip(profile, paper, rating, generation):
    token = make_token(SECRET, profile, paper, rating, generation)
    vote = read_token(SECRET, token)
    assert (vote.profile, vote.paper_id, vote.rating, vote.generation) == (profile, paper, rating, generation)
    assert "/" not in token and "+" not in token and "=" not in token  # URL-safe as it is

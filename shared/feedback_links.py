"""Signed feedback tokens and links (docs/DESIGN.md "Feedback"): what the page's buttons, feed
items, e-mails and chat messages carry to rate a paper for a profile.

A token is an itsdangerous URLSafeTimedSerializer signature (HMAC-SHA256 under SECRET_KEY, salt
SALT, so it can never pass for any other signed value) of [profile, paper id, rating, key
generation] and the time it was issued; it is valid for `feedback.link_days` (90) days. The key
generation is the profile's (shared.profile_keys): rotating a private profile's key invalidates
its feedback links too. A token needs no profile key: it is itself the proof that its bearer was
shown that paper in that profile's digest, and it rates only that paper for that profile.

`feedback_url(session, settings, config, profile, paper_id, rating)` is the function other
channels call (e-mail, chat, feeds): the absolute GET URL <feeds.public_url>/feedback?t=<token>,
which answers a confirmation page with one POST button (a GET never records: mail scanners open
every link); None when feeds.public_url is not set (a link must name the site).

Tokens are made with an explicit `issued_at` where the same bytes must come out in every process
(the page and feeds of one publication are stamped with its publication time); otherwise now.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass
from urllib.parse import quote

from .models import RATINGS

SALT = "arxiv-bot feedback v1"
MAX_TOKEN = 400  # characters; a real token is about 120
_CODES = {"up": "u", "down": "d"}
_RATING = {v: k for k, v in _CODES.items()}


class BadToken(ValueError):
    """A token that is forged, tampered with, expired or malformed; str() is one line."""


@dataclass(frozen=True)
class Vote:
    profile: str
    paper_id: str
    rating: str       # "up" | "down"
    generation: int   # the profile's key generation when the token was made
    issued_at: int    # POSIX seconds


def _serializer(secret: bytes):
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(secret, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})


def _seconds(when) -> int:
    if when is None:
        return int(time.time())
    if isinstance(when, dt.datetime):
        return int(when.timestamp())
    return int(when)


def make_token(secret: bytes, profile: str, paper_id: str, rating: str, generation: int = 1,
               issued_at: dt.datetime | int | None = None) -> str:
    """The signed token for (profile, paper, rating), stamped `issued_at` (default: now)."""
    if rating not in _CODES:
        raise ValueError(f"rating must be one of {', '.join(RATINGS)}")
    ser = _serializer(secret)
    signer = ser.make_signer(ser.salt)
    stamp = _seconds(issued_at)
    signer.get_timestamp = lambda: stamp  # the same bytes in every process for one publication
    return signer.sign(ser.dump_payload([profile, paper_id, _CODES[rating], int(generation)])).decode("ascii")


def read_token(secret: bytes, token: str, max_age_days: float = 90) -> Vote:
    """The vote a token carries; raises BadToken (one line) when it is not one of ours, was
    changed, is older than `max_age_days` or dated in the future."""
    from itsdangerous import BadData, SignatureExpired

    if not isinstance(token, str) or not token.strip():
        raise BadToken("feedback link: the token is missing")
    token = token.strip()
    if len(token) > MAX_TOKEN or not token.isascii():
        raise BadToken("feedback link: the token is not valid")
    ser = _serializer(secret)
    try:
        payload, stamp = ser.loads(token, max_age=max_age_days * 86400, return_timestamp=True)
    except SignatureExpired:
        raise BadToken("feedback link: expired; use the buttons of a newer digest") from None
    except (BadData, ValueError, TypeError, UnicodeError):
        raise BadToken("feedback link: the token is not valid") from None
    issued = int(stamp.timestamp())
    if issued > time.time() + 300:
        raise BadToken("feedback link: the token is not valid")
    if (not isinstance(payload, list) or len(payload) != 4 or not all(isinstance(v, str) for v in payload[:3])
            or payload[2] not in _RATING or not isinstance(payload[3], int) or isinstance(payload[3], bool)):
        raise BadToken("feedback link: the token is not valid")
    return Vote(payload[0], payload[1], _RATING[payload[2]], payload[3], issued)


@dataclass(frozen=True)
class FeedbackLinks:
    """What a rendering of one profile's digest needs to offer feedback on its papers:
    `token(paper, rating)` for the served page's forms, `url(paper, rating)` for published files
    and feeds (absolute, under feeds.public_url; None without it)."""

    secret: bytes
    profile: str
    generation: int
    issued_at: int
    base_url: str | None = None   # feeds.public_url
    action: str = "/feedback"     # where the served page's forms post

    def token(self, paper_id: str, rating: str) -> str:
        return make_token(self.secret, self.profile, paper_id, rating, self.generation, self.issued_at)

    def url(self, paper_id: str, rating: str) -> str | None:
        if not self.base_url:
            return None
        return f"{self.base_url.rstrip('/')}/feedback?t={quote(self.token(paper_id, rating), safe='')}"


def _slug(profile) -> str:
    return profile if isinstance(profile, str) else profile.slug


def links_for(session, settings, config, profile, issued_at=None) -> FeedbackLinks:
    """A profile's FeedbackLinks (`profile`: a slug or a shared.profiles.Profile)."""
    from .profile_keys import generation, secret_key

    slug = _slug(profile)
    return FeedbackLinks(secret_key(session, settings), slug, generation(session, slug), _seconds(issued_at),
                         config.feeds.public_url)


def feedback_url(session, settings, config, profile, paper_id: str, rating: str, issued_at=None) -> str | None:
    """The absolute link that rates `paper_id` up or down for `profile` (a slug or a Profile)
    after one confirmation click, or None when feeds.public_url is not set. For e-mails, chat
    messages and feed items; valid for feedback.link_days days from `issued_at` (default now)."""
    if not config.feeds.public_url:
        return None
    return links_for(session, settings, config, profile, issued_at).url(paper_id, rating)

"""Keys of private profiles, and the deployment's own SECRET_KEY when the environment has none.

A private profile's URLs need ?key=<token>. The token is derived, not stored: an HMAC of the
profile's name and its key generation under SECRET_KEY, so it is unguessable, the same in every
process, and `arxiv-bot profile rotate SLUG` (generation + 1) invalidates every old link at once.
Checks compare in constant time. SECRET_KEY comes from the environment; when it is unset one is
generated once and kept in the database (app_secrets), so every process agrees on it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .models import AppSecret, ProfileKey, utcnow

SECRET_NAME = "secret_key"


def secret_key(session, settings) -> bytes:
    """SECRET_KEY from the environment, else the one generated for this deployment (made once)."""
    if settings.secret_key:
        return settings.secret_key.encode("utf-8")
    row = session.get(AppSecret, SECRET_NAME)
    if row is None:
        try:
            with session.begin_nested():
                row = AppSecret(name=SECRET_NAME, value=secrets.token_urlsafe(48))
                session.add(row)
                session.flush()
        except IntegrityError:  # another process made it first: use theirs
            row = session.get(AppSecret, SECRET_NAME)
    return row.value.encode("utf-8")


def generation(session, profile: str) -> int:
    return session.scalar(select(ProfileKey.generation).where(ProfileKey.profile == profile)) or 1


def derive(secret: bytes, profile: str, gen: int) -> str:
    mac = hmac.new(secret, f"arxiv-bot profile key\0{profile}\0{gen}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode("ascii")


def profile_key(session, settings, profile: str) -> str:
    return derive(secret_key(session, settings), profile, generation(session, profile))


def check(given: str | None, expected: str) -> bool:
    """Constant-time comparison; a missing key is simply wrong."""
    return bool(given) and hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def rotate(session, profile: str) -> int:
    """Invalidate the profile's key (every old link); returns the new generation."""
    if session.execute(update(ProfileKey).where(ProfileKey.profile == profile)
                       .values(generation=ProfileKey.generation + 1, rotated_at=utcnow())).rowcount == 0:
        session.add(ProfileKey(profile=profile, generation=2, rotated_at=utcnow()))
        session.flush()
    return generation(session, profile)

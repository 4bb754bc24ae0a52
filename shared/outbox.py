"""The delivery outbox (docs/DESIGN.md "Delivery"): what to send, to whom, and who sends it now.

- `plan` writes one row per (profile, day, channel, recipient) in the transaction that publishes
  the profile (shared.passes.deliver). The unique key has the announcement day, not the pass: a
  second pass of the same day (another `run`, a `trigger`) finds the rows there and adds none,
  so it delivers nothing again; a recipient added to the config in between gets that day's
  digest. A channel is named by a hash of its config without secrets (webhooks name their URL's
  variable; e-mail leaves its recipients out, so adding one does not re-send to the others).
- `claim` is a conditional UPDATE (pending, or sending under an expired lease -> sending, with
  this worker's name and a lease): two workers, or a message delivered twice, never send the
  same row at the same time. `mark_sent` only after the server accepted the digest; `release`
  (transient failure, may carry the server's Retry-After) and `fail` (permanent) record why.
- `stuck` is the sweep's part: rows untouched for the stuck age, and rows whose lease expired
  (their worker died), go back to pending and are sent again.
Empty digests are not mailed or posted (nothing to read); git commits every day's README.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import Date, and_, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from .models import (DELIVERY_FAILED, DELIVERY_PENDING, DELIVERY_SENDING, DELIVERY_SENT, Delivery, UTCDateTime,
                     utcnow)
from .smtp_url import mask_url
from .text import one_line

BATCH = 50          # rows of one channel per deliver message (one SMTP connection serves them)


# -- channels ------------------------------------------------------------------------------------

def channel_key(channel) -> str:
    """A stable name for a channel across passes, without secrets (see the module docstring)."""
    data = channel.model_dump(mode="json")
    data.pop("to", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def channel_label(channel) -> str:
    """How `arxiv-bot status` names the channel (credentials in a git URL masked)."""
    if channel.type == "email":
        return "email"
    if channel.type == "webhook":
        return f"webhook {channel.format} (${channel.url_env})"
    repo = mask_url(channel.repo) if "://" in channel.repo else channel.repo
    return f"git {repo} {channel.branch}:{channel.path}"[:200]


def recipients(channel) -> list[str]:
    if channel.type == "email":
        return list(channel.to)
    return [channel.url_env if channel.type == "webhook" else channel.path]


def find_channel(profile, key: str):
    """The profile's channel named `key`, or None when it is no longer configured."""
    return next((c for c in profile.deliver if channel_key(c) == key), None)


# -- writing the outbox (in the publishing transaction) -------------------------------------------

def plan(session: Session, pass_id: int, day: dt.date, profile, papers: int) -> list[tuple[int, str]]:
    """Rows for every channel and recipient of `profile` that the day has none for yet; returns
    their (id, channel_key)."""
    if not profile.deliver:
        return []
    now = utcnow()
    rows: dict[tuple[str, str], dict] = {}
    for ch in profile.deliver:
        if papers == 0 and ch.type != "git":
            continue
        key, label = channel_key(ch), channel_label(ch)  # once per channel, not per recipient
        for to in recipients(ch):
            rows.setdefault((key, to), dict(pass_id=pass_id, profile=profile.slug, day=day, channel=ch.type,
                                            channel_key=key, label=label, recipient=to, status=DELIVERY_PENDING,
                                            attempts=0, parts_sent=0, created_at=now, updated_at=now))
    if not rows:
        return []
    # One executemany of one statement (prepared once; a multi-row VALUES of 10,000 rows costs
    # the drivers seconds to parse), skipping the rows the day has already.
    session.execute(_INSERT, list(rows.values()))
    # The rows of this pass and profile can only come from this call: a profile is published
    # once per pass (claim_publishing), in this transaction.
    return [tuple(r) for r in session.execute(
        select(Delivery.id, Delivery.channel_key).where(Delivery.pass_id == pass_id, Delivery.profile == profile.slug)
        .order_by(Delivery.id))]


_COLUMNS = ("pass_id", "profile", "day", "channel", "channel_key", "label", "recipient", "status", "attempts",
            "parts_sent", "created_at", "updated_at")
_INSERT = text(f"INSERT INTO deliveries ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)}) "
               "ON CONFLICT (profile, day, channel_key, recipient) DO NOTHING").bindparams(
    bindparam("day", type_=Date), bindparam("created_at", type_=UTCDateTime), bindparam("updated_at", type_=UTCDateTime))


def batches(rows: list[tuple[int, str]]) -> list[list[int]]:
    """Row ids grouped by channel, at most BATCH per group (one deliver message each)."""
    by_channel: dict[str, list[int]] = {}
    for row_id, key in rows:
        by_channel.setdefault(key, []).append(row_id)
    return [ids[i:i + BATCH] for ids in by_channel.values() for i in range(0, len(ids), BATCH)]


# -- one row's life (each call in its own short transaction) -------------------------------------

def claim(session: Session, row_id: int, owner: str, lease_seconds: float):
    """Take the row for sending: its (id, attempts, parts_sent), or None (sent, failed, claimed by
    a live worker, or its Retry-After not over yet). Exactly one caller wins however many race."""
    now = utcnow()
    claimed = session.execute(
        update(Delivery).where(
            Delivery.id == row_id,
            or_(Delivery.status == DELIVERY_PENDING,
                and_(Delivery.status == DELIVERY_SENDING, Delivery.lease_expires_at < now)),
            or_(Delivery.not_before.is_(None), Delivery.not_before <= now))
        .values(status=DELIVERY_SENDING, lease_owner=owner, lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
                attempts=Delivery.attempts + 1, updated_at=now)
        .returning(Delivery.id, Delivery.attempts, Delivery.parts_sent)
        .execution_options(synchronize_session=False)).first()
    return claimed


def _mine(row_id: int, owner: str):
    return (Delivery.id == row_id, Delivery.status == DELIVERY_SENDING, Delivery.lease_owner == owner)


def mark_sent(session: Session, row_id: int, owner: str, note: str | None = None) -> bool:
    """The server accepted it. False when the lease was lost meanwhile (a worker that outlived
    its lease: the take-over may have sent it again; delivery.lease_seconds is too short)."""
    now = utcnow()
    return session.execute(update(Delivery).where(*_mine(row_id, owner)).values(
        status=DELIVERY_SENT, sent_at=now, updated_at=now, lease_owner=None, lease_expires_at=None, error=note and one_line(note, 2000))
        .execution_options(synchronize_session=False)).rowcount == 1


def renew(session: Session, owner: str, lease_seconds: float) -> None:
    """Extend the leases of the rows `owner` is sending (its heartbeat, shared.liveness)."""
    session.execute(update(Delivery).where(Delivery.status == DELIVERY_SENDING, Delivery.lease_owner == owner)
                    .values(lease_expires_at=utcnow() + dt.timedelta(seconds=lease_seconds))
                    .execution_options(synchronize_session=False))


def record_part(session: Session, row_id: int, owner: str, parts_sent: int) -> None:
    """A chat post of a split digest was accepted: a retry continues after it."""
    session.execute(update(Delivery).where(*_mine(row_id, owner)).values(parts_sent=parts_sent, updated_at=utcnow())
                    .execution_options(synchronize_session=False))


def release(session: Session, row_id: int, owner: str, reason: str, retry_after: float | None = None) -> None:
    """A transient failure: back to pending with the reason; not before the server's Retry-After."""
    now = utcnow()
    later = now + dt.timedelta(seconds=retry_after) if retry_after else None
    session.execute(update(Delivery).where(*_mine(row_id, owner)).values(
        status=DELIVERY_PENDING, lease_owner=None, lease_expires_at=None, error=one_line(reason, 2000), not_before=later,
        updated_at=now).execution_options(synchronize_session=False))


def fail(session: Session, row_id: int, owner: str, reason: str) -> None:
    """A permanent failure: never retried (until `arxiv-bot deliver --retry-failed`)."""
    session.execute(update(Delivery).where(*_mine(row_id, owner)).values(
        status=DELIVERY_FAILED, lease_owner=None, lease_expires_at=None, error=one_line(reason, 2000), updated_at=utcnow())
        .execution_options(synchronize_session=False))


def give_up(session: Session, row_ids: list[int], reason: str) -> int:
    """Retries used up: the rows of `row_ids` still pending become failed with `reason`."""
    return session.execute(update(Delivery).where(Delivery.id.in_(row_ids), Delivery.status == DELIVERY_PENDING)
                           .values(status=DELIVERY_FAILED, error=one_line(reason, 2000), updated_at=utcnow())
                           .execution_options(synchronize_session=False)).rowcount


# -- recovery -------------------------------------------------------------------------------------

def unfinished(session: Session) -> list[tuple[int, str]]:
    """Rows to send again (a resume: `arxiv-bot run`, `deliver`): pending ones and claimed ones
    whose worker died (their lease expired, or their owner is a process of this host that no
    longer runs: `arxiv-bot run`/`deliver` killed and run again takes over at once); the latter go
    back to pending. Every returned row is marked touched, so it is re-sent at most once per
    stuck age."""
    from .liveness import local_pid_dead

    now = utcnow()
    owners = session.scalars(select(Delivery.lease_owner).where(Delivery.status == DELIVERY_SENDING,
                                                                Delivery.lease_expires_at >= now).distinct()).all()
    dead = [o for o in owners if o and local_pid_dead(o)]
    expired = session.execute(
        update(Delivery).where(Delivery.status == DELIVERY_SENDING,
                               or_(Delivery.lease_expires_at < now, Delivery.lease_owner.in_(dead)))
        .values(status=DELIVERY_PENDING, lease_owner=None, lease_expires_at=None, updated_at=now,
                error="the worker sending it stopped before the server answered")
        .returning(Delivery.id, Delivery.channel_key).execution_options(synchronize_session=False)).all()
    pending = session.execute(select(Delivery.id, Delivery.channel_key).where(Delivery.status == DELIVERY_PENDING))
    rows = sorted({tuple(r) for r in [*expired, *pending]})
    ids = [r[0] for r in rows]
    for i in range(0, len(ids), 1000):
        session.execute(update(Delivery).where(Delivery.id.in_(ids[i:i + 1000])).values(updated_at=now)
                        .execution_options(synchronize_session=False))
    return rows


def retry_failed(session: Session) -> int:
    """Failed rows back to pending (`arxiv-bot deliver --retry-failed`); how many."""
    return session.execute(update(Delivery).where(Delivery.status == DELIVERY_FAILED)
                           .values(status=DELIVERY_PENDING, not_before=None, updated_at=utcnow())
                           .execution_options(synchronize_session=False)).rowcount


def counts(session: Session, pass_id: int | None = None) -> dict[str, int]:
    """Rows per status (of one pass, or all)."""
    q = select(Delivery.status, func.count()).group_by(Delivery.status)
    if pass_id is not None:
        q = q.where(Delivery.pass_id == pass_id)
    out = dict.fromkeys((DELIVERY_PENDING, DELIVERY_SENDING, DELIVERY_SENT, DELIVERY_FAILED), 0)
    out.update({status: n for status, n in session.execute(q)})
    return out

"""Deliverer stage logic (Celery-free; tasks.py and the embedded runner call these).

deliver(delivery_ids): send a batch of outbox rows of one channel (shared/outbox.py). Each row
is claimed just before it is sent (a conditional UPDATE with a lease, committed), marked sent
right after the server accepted it, and its failure recorded (transient: back to pending with
the reason and the server's Retry-After; permanent: failed with the reason). So a row is never
sent by two workers at once, a redelivered message skips what is done, and the only window for
a second copy is a crash after the server's acceptance and before the mark (docs/ARCHITECTURE.md
"Delivery"). After the batch, its transient failures are raised as one TransientError: the task
is retried with backoff (the rows' Retry-After honoured); when the budget is spent, the rows
still pending become failed (`arxiv-bot deliver --retry-failed` sends them again).
"""
from __future__ import annotations

import logging
import os
import secrets
import socket

from sqlalchemy import select

from shared import liveness, names, outbox, profile_keys
from shared.errors import PermanentError, TransientError
from shared.models import DELIVERY_PENDING, DELIVERY_SENDING, Delivery
from shared.tasking import Handler

from . import chat, content, mail
from .gitpush import GitChannelPusher
from .smtp import ChannelDown, SmtpSender
from .webhook import WebhookPoster

log = logging.getLogger(__name__)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _http_client(rt):
    import httpx

    timeout = rt.config.delivery.timeout_seconds
    # httpx logs every request's URL at INFO, and a webhook URL is a secret: whatever the
    # process's logging set-up (shared.logs does the same), never below WARNING.
    for name in ("httpx", "httpcore"):
        if logging.getLogger(name).getEffectiveLevel() < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)
    return rt.memo("deliverer.http", lambda: httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)), follow_redirects=False,
        headers={"User-Agent": f"arxiv-bot (+{rt.config.contact})"}))


def deliver(rt, delivery_ids: list[int]) -> None:
    """Send each row of the batch at most once at a time, and exactly once when nothing crashes
    between the server's acceptance and the mark (see the module docstring)."""
    with rt.session() as s:
        rows = s.execute(select(Delivery.id, Delivery.channel, Delivery.channel_key, Delivery.profile,
                                Delivery.pass_id, Delivery.recipient)
                         .where(Delivery.id.in_(delivery_ids),
                                Delivery.status.in_([DELIVERY_PENDING, DELIVERY_SENDING]))
                         .order_by(Delivery.id)).all()
    if not rows:
        return
    owner = _owner()
    failures: list[TransientError] = []
    senders: dict = {}
    sent = None  # (row id, note): marked in the transaction that claims the next row (one commit)

    def renew() -> None:  # our heartbeat keeps the row we are sending ours (shared.liveness)
        with rt.session() as s:
            outbox.renew(s, owner, rt.config.delivery.lease_seconds)

    lease = liveness.hold_lease(renew)
    lease.__enter__()
    try:
        for row in rows:
            try:
                sent = _one(rt, row, owner, senders, failures, sent)
            except ChannelDown as exc:  # nobody of this batch can be served now: the rest waits
                failures.append(exc)
                sent = None
                break
    finally:
        lease.__exit__(None, None, None)
        if sent is not None:
            with rt.session() as s:
                _mark(rt, s, owner, *sent)
        for sender in senders.values():
            if hasattr(sender, "close"):
                sender.close()
    if failures:
        waits = [f.retry_after for f in failures if f.retry_after]
        raise TransientError(f"{len(failures)} of {len(rows)} deliveries not sent yet: {failures[0]}",
                             retry_after=max(waits) if waits else None)


def _mark(rt, s, owner: str, row_id: int, note: str | None) -> None:
    if not outbox.mark_sent(s, row_id, owner, note):
        log.warning("delivery %d was taken over by another worker while it was sent (lease %gs too short?)",
                    row_id, rt.config.delivery.lease_seconds)


def _channel(rt, slug: str, key: str):
    """The configured channel of a row, or None when the profile no longer has it. Cached per
    process while the readers are unchanged: an e-mail channel may list 10,000 addresses, and
    hashing its config for every row would cost more than sending."""
    readers = rt.readers()
    cache = rt.memo("deliverer.channels", dict)
    hit = cache.get((slug, key))
    if hit is None or hit[0] is not readers:
        if len(cache) > 10_000:
            cache.clear()
        profile = readers.get(slug)
        hit = cache[(slug, key)] = (readers, outbox.find_channel(profile, key) if profile else None)
    return hit[1]


def _one(rt, row, owner: str, senders: dict, failures: list, sent) -> tuple[int, str | None] | None:
    """Claim and send one row; returns (its id, note) when the server accepted it, for the
    caller to mark in its next transaction (`sent`, the previous row's, is marked in this one's
    claim: the mark is committed as soon as before, with one commit per row instead of two)."""
    with rt.session() as s:
        if sent is not None:
            _mark(rt, s, owner, *sent)
        claimed = outbox.claim(s, row.id, owner, rt.config.delivery.lease_seconds)
        if claimed is None:
            return None  # sent, failed, another worker's, or its Retry-After is not over
        parts_sent = claimed.parts_sent
        channel = _channel(rt, row.profile, row.channel_key)
        d = content.load(rt, s, row.pass_id, row.profile) if channel else None
        secret = profile_keys.secret_key(s, rt.settings) if channel and rt.settings.secret_key else None
    try:
        if channel is None:
            raise PermanentError(f"profile {row.profile} no longer has this channel ({row.channel})")
        note = _send(rt, row, owner, channel, d, parts_sent, senders, secret)
    except TransientError as exc:
        with rt.session() as s:
            outbox.release(s, row.id, owner, str(exc), exc.retry_after)
        log.info("delivery %d (%s %s): %s", row.id, row.profile, row.channel, exc)
        if isinstance(exc, ChannelDown):
            raise
        failures.append(exc)
        return None
    except PermanentError as exc:
        with rt.session() as s:
            outbox.fail(s, row.id, owner, str(exc))
        log.warning("delivery %d (%s %s) failed: %s", row.id, row.profile, row.channel, exc)
        return None
    except BaseException:
        # A bug (or the worker stopping): give the row back now rather than after the lease.
        with rt.session() as s:
            outbox.release(s, row.id, owner, "interrupted")
        raise
    return row.id, note


def _send(rt, row, owner, channel, d, parts_sent: int, senders: dict, secret) -> str | None:
    timeout = rt.config.delivery.timeout_seconds
    if channel.type == "email":
        smtp = senders.get("smtp")
        if smtp is None:
            smtp = senders["smtp"] = SmtpSender(rt.settings.smtp_url, timeout)
        sender = rt.settings.smtp_from
        if not sender:
            raise PermanentError("SMTP_FROM is not set: e-mail delivery needs a sender address")
        key = ("mail", d.pass_id, d.profile)
        if key not in senders:
            senders[key] = mail.template(d, sender)
        domain = _address(sender).rsplit("@", 1)[-1]
        smtp.send(_address(sender), row.recipient, mail.for_recipient(senders[key], d, row.recipient, domain))
        return None
    if channel.type == "webhook":
        poster = WebhookPoster(_http_client(rt), channel.format, channel.url_env, os.environ, secret)
        bodies = chat.parts(channel.format, d)
        for k in range(parts_sent, len(bodies)):
            poster.post(bodies[k], f"arxiv-bot-{d.day.isoformat()}-{d.profile}-{row.channel_key[:12]}-{k + 1}")
            if len(bodies) > 1:
                with rt.session() as s:
                    outbox.record_part(s, row.id, owner, k + 1)
        return f"{len(bodies)} posts" if len(bodies) > 1 else None
    return GitChannelPusher(channel, timeout).deliver(d, row.channel_key)


def _address(sender: str) -> str:
    from email.utils import parseaddr

    return parseaddr(sender)[1] or sender


def give_up(rt, exc: Exception, delivery_ids: list[int]) -> None:
    """Retries used up: what is still pending of the batch becomes failed, with the reason."""
    with rt.session() as s:
        n = outbox.give_up(s, delivery_ids, f"gave up after retries: {exc}")
    if n:
        log.warning("%d deliveries failed: %s", n, exc)


HANDLERS = [
    Handler(names.DELIVER, deliver, soft_time_limit=1800, time_limit=1860, backoff_base=5.0, backoff_cap=300.0,
            on_give_up=give_up, retries_from_config=lambda rt: rt.config.delivery.max_retries,
            embedded_retries=3),
]

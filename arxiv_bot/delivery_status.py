"""The deliveries part of `arxiv-bot status`: pending, sent and failed per profile and channel,
with the newest reason a delivery is not (yet) sent. Reads only; names channels by their label
(no secret: webhooks by their URL's variable, git URLs with credentials masked)."""
from __future__ import annotations

from sqlalchemy import case, func, select

from shared.models import DELIVERY_FAILED, DELIVERY_PENDING, DELIVERY_SENDING, DELIVERY_SENT, Delivery


def collect(session) -> list[dict]:
    """Per (profile, channel): the last day delivered or planned, counts by status over all days,
    and the newest error of a row that is not sent."""
    def n(*states):
        return func.sum(case((Delivery.status.in_(states), 1), else_=0))

    rows = session.execute(
        select(Delivery.profile, Delivery.label, func.max(Delivery.day), n(DELIVERY_PENDING, DELIVERY_SENDING),
               n(DELIVERY_SENT), n(DELIVERY_FAILED))
        .group_by(Delivery.profile, Delivery.label).order_by(Delivery.profile, Delivery.label)).all()
    errors = {}
    for profile, label, error in session.execute(
            select(Delivery.profile, Delivery.label, Delivery.error)
            .where(Delivery.status != DELIVERY_SENT, Delivery.error.is_not(None))
            .order_by(Delivery.updated_at)).all():
        errors[(profile, label)] = error  # the newest wins
    return [{"profile": profile, "channel": label, "last_day": day.isoformat() if hasattr(day, "isoformat") else day,
             "pending": int(pending or 0), "sent": int(sent or 0), "failed": int(failed or 0),
             "last_error": errors.get((profile, label))}
            for profile, label, day, pending, sent, failed in rows]


def lines(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    out = ["deliveries (all days):"]
    for r in rows:
        out.append(f"  {r['profile']:<20} {r['channel']:<40} {r['pending']} pending, {r['sent']} sent, "
                   f"{r['failed']} failed (last day {r['last_day']})")
        if r["last_error"] and (r["pending"] or r["failed"]):
            out.append(f"    last error: {r['last_error']}")
    if any(r["failed"] for r in rows):
        out.append("  `arxiv-bot deliver --retry-failed` sends the failed ones again")
    return out

"""`arxiv-bot deliver [--retry-failed]`: send what the outbox still holds.

Without a broker (embedded mode) the deliveries run in this process and the command prints what
became of them; with BROKER_URL they are enqueued on the deliverer's queue. --retry-failed first
puts failed deliveries back to pending (after the cause is fixed: an address, a webhook URL,
the mail server). Exit status 1 when a delivery failed (embedded mode).
"""
from __future__ import annotations

import logging
import os

from sqlalchemy import func, select

from shared import names, outbox, passes
from shared.db import ensure_schema
from shared.models import DELIVERY_FAILED, DELIVERY_SENT, Delivery
from shared.runtime import Runtime, set_runtime

EMBEDDED_THREADS = 4


def deliver(config, settings, retry_failed: bool = False) -> int:
    if settings.distributed:
        from .distributed import _runtime, check_broker

        rt, app = _runtime(config, settings)
        ensure_schema(rt.engine)
        check_broker(app)
        dispatcher = None
    else:
        from shared.dispatch import LocalDispatcher

        from .services import handler_table

        if not os.environ.get("LOG_LEVEL"):
            logging.getLogger().setLevel(logging.CRITICAL)
        dispatcher = LocalDispatcher(handler_table(), threads={names.DELIVER_QUEUE: EMBEDDED_THREADS})
        rt = Runtime(config, settings, dispatcher=dispatcher)
        set_runtime(rt)
        ensure_schema(rt.engine)
    with rt.session() as s:
        reset = outbox.retry_failed(s) if retry_failed else 0
        work = passes.pending_deliveries(s)
    ids = [i for _, kw in work for i in kw["delivery_ids"]]
    prefix = f"{reset} failed deliveries back to pending; " if retry_failed else ""
    if not ids:
        print(f"{prefix}nothing to deliver")
        return 0
    rt.send_all(work)
    if dispatcher is None:
        print(f"{prefix}{len(ids)} deliveries enqueued on the '{names.DELIVER_QUEUE}' queue (see `arxiv-bot status`)")
        return 0
    dispatcher.run_until_idle(rt)
    with rt.session() as s:
        by_status = dict(s.execute(select(Delivery.status, func.count()).where(Delivery.id.in_(ids))
                                   .group_by(Delivery.status)).all())
    failed = by_status.get(DELIVERY_FAILED, 0)
    pending = len(ids) - failed - by_status.get(DELIVERY_SENT, 0)
    print(f"{prefix}{by_status.get(DELIVERY_SENT, 0)} sent, {failed} failed, {pending} pending"
          + (" (see `arxiv-bot status` for the reasons)" if failed or pending else ""))
    return 1 if failed else 0

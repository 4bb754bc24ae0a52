"""`arxiv-bot run`: one whole pass in this process (embedded mode).

The same stage handlers the workers run are executed here through a LocalDispatcher, on the
configured database (SQLite by default). An unfinished pass (an earlier run that crashed) is
resumed, not started over. Progress is printed per stage; the last line counts the outcome.
"""
from __future__ import annotations

import gc
import logging
import os
import sys

from shared import lifecycle, liveness, names, outbox
from shared.config import Config
from shared.db import ensure_schema
from shared.dispatch import LocalDispatcher
from shared.errors import UserError
from shared.models import PASS_EMPTY, PASS_FAILED, PASS_PUBLISHED, Pass
from shared.runtime import Runtime, set_runtime
from shared.settings import Settings

from .progress import Progress, outcome_line
from .services import handler_table


def run_pass(config: Config, settings: Settings, no_summaries: bool = False, quiet: bool = False) -> int:
    if not os.environ.get("LOG_LEVEL"):
        # A person reads progress lines and one final line; LOG_LEVEL=INFO shows the log instead.
        logging.getLogger().setLevel(logging.CRITICAL)
    # Summaries run in threads, like summarizer worker processes: the shared limiter keeps them
    # within the provider's limits.
    # Deliveries too: one slow mail server does not hold up the webhooks and git.
    dispatcher = LocalDispatcher(handler_table(), threads={names.SUMMARIZE_QUEUE: config.ai_summary.max_workers,
                                                           names.DELIVER_QUEUE: 4})
    rt = Runtime(config, settings, dispatcher=dispatcher)
    set_runtime(rt)
    ensure_schema(rt.engine)
    # Renews the leases this run holds while its calls run (and says it is alive in Redis when
    # REDIS_URL is set): a run killed mid-call leaves leases that the next run takes over at once.
    liveness.start(settings.redis_url)

    # The tens of thousands of objects the imports made live until exit: keep the cyclic GC from
    # walking them again and again during the pass (about a tenth of a short run's CPU time).
    gc.freeze()
    progress = Progress(rt, open(os.devnull, "w") if quiet else sys.stdout)
    dispatcher.on_step = progress.step
    progress.begin(no_summaries)
    pass_id, _created = lifecycle.start_pass(rt, trigger="cli", no_summaries=no_summaries)
    dispatcher.run_until_idle(rt)
    progress.end()

    with rt.session() as s:
        p = s.get(Pass, pass_id)
        status, error = p.status, p.error
        line = outcome_line(s, p, settings)
        sent = outbox.counts(s, pass_id)
    rt.engine.dispose()  # close now, not at exit: SQLite folds its write-ahead log into the file
    if status == PASS_FAILED:
        hint = " (offline? `make demo` runs the pipeline on a recorded day)" if "reach arXiv" in (error or "") else ""
        raise UserError(f"pass {pass_id} failed: {error}{hint}")
    if status not in (PASS_PUBLISHED, PASS_EMPTY):
        raise UserError(f"pass {pass_id} stopped in state '{status}' (see `arxiv-bot status`)")
    if any(sent.values()):
        left = sent["pending"] + sent["sending"]
        print(f"delivered: {sent['sent']} sent, {sent['failed']} failed{f', {left} pending' if left else ''}"
              + (" (see `arxiv-bot status`)" if sent["failed"] or left else ""))
    print(line)
    return 0

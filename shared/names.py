"""Queue and task names: the only thing services know about each other.

A service sends work to another by name (``app.send_task(names.SCORE_BATCH, ...)`` or the
embedded dispatcher), never by importing the other service's code.
"""
from __future__ import annotations

# One queue per service; one worker process type per queue.
FETCH_QUEUE = "fetch"
SCORE_QUEUE = "score"
SUMMARIZE_QUEUE = "summarize"
PUBLISH_QUEUE = "publish"
QUEUES = (FETCH_QUEUE, SCORE_QUEUE, SUMMARIZE_QUEUE, PUBLISH_QUEUE)

# Task names, namespaced by the service that owns them.
START_PASS = "fetcher.start_pass"        # beat's entry point: open (or resume) a pass
FETCH_PASS = "fetcher.fetch_pass"        # fetch the announcements for a pass
SWEEP = "fetcher.sweep"                  # re-enqueue work stuck in any stage
SCORE_BATCH = "scorer.score_batch"       # score a batch of papers of a pass, then select once
SUMMARIZE_PAPER = "summarizer.summarize_paper"
PUBLISH_PASS = "publisher.publish_pass"

TASK_QUEUES = {
    START_PASS: FETCH_QUEUE,
    FETCH_PASS: FETCH_QUEUE,
    SWEEP: FETCH_QUEUE,
    SCORE_BATCH: SCORE_QUEUE,
    SUMMARIZE_PAPER: SUMMARIZE_QUEUE,
    PUBLISH_PASS: PUBLISH_QUEUE,
}

# `arxiv-bot worker <service>` -> the queue it consumes and the module that registers its tasks.
SERVICES = {
    "fetcher": (FETCH_QUEUE, "services.fetcher.tasks"),
    "scorer": (SCORE_QUEUE, "services.scorer.tasks"),
    "summarizer": (SUMMARIZE_QUEUE, "services.summarizer.tasks"),
    "publisher": (PUBLISH_QUEUE, "services.publisher.tasks"),
}

# Embedded mode: the module of each service that holds its plain (Celery-free) handlers.
HANDLER_MODULES = (
    "services.fetcher.handlers",
    "services.scorer.handlers",
    "services.summarizer.handlers",
    "services.publisher.handlers",
)

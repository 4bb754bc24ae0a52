"""Queue and task names: the only thing services know about each other.

A service sends work to another by name (`rt.dispatch(names.SCORE_PROFILES, ...)`, through Celery
or the embedded dispatcher), never by importing the other service's code. A task's queue is part
of its name's contract: senders route by it, and the handler registered under the name
(shared.tasking.Handler) runs on a worker consuming that queue.
"""
from __future__ import annotations

# One queue per service; one worker process type per queue.
FETCH_QUEUE = "fetch"
SCORE_QUEUE = "score"
SUMMARIZE_QUEUE = "summarize"
PUBLISH_QUEUE = "publish"
DELIVER_QUEUE = "deliver"  # its own queue: a slow mail server never holds up publishing
QUEUES = (FETCH_QUEUE, SCORE_QUEUE, SUMMARIZE_QUEUE, PUBLISH_QUEUE, DELIVER_QUEUE)

# Task names, namespaced by the service that owns them.
START_PASS = "fetcher.start_pass"        # beat's entry point: open (or resume) a pass
FETCH_PASS = "fetcher.fetch_pass"        # fetch the announcements for a pass
SWEEP = "fetcher.sweep"                  # re-enqueue work stuck in any stage
SCORE_PROFILES = "scorer.score_profiles"  # score and select a batch of profiles of a pass
SUMMARIZE_PAPER = "summarizer.summarize_paper"  # one summary: a paper in one language
PUBLISH_PROFILES = "publisher.publish_profiles"  # write a batch of profiles' digests
DELIVER = "deliverer.deliver"            # send a batch of outbox rows (deliveries) of one channel

TASK_QUEUES = {
    START_PASS: FETCH_QUEUE,
    FETCH_PASS: FETCH_QUEUE,
    SWEEP: FETCH_QUEUE,
    SCORE_PROFILES: SCORE_QUEUE,
    SUMMARIZE_PAPER: SUMMARIZE_QUEUE,
    PUBLISH_PROFILES: PUBLISH_QUEUE,
    DELIVER: DELIVER_QUEUE,
}

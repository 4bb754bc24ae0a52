"""The `arxiv-bot` console script (DESIGN.md "CLI contract").

Heavy modules (celery, flask, openai, alembic) are imported inside the command that needs them,
so `arxiv-bot run` starts fast. Every failure a user can cause or fix ends as one line on stderr
and a non-zero status: 2 for bad config/usage, 1 for everything else. ARXIV_BOT_DEBUG=1 shows
tracebacks of unexpected errors.
"""
from __future__ import annotations

import argparse
import os
import sys

from shared.errors import UserError, first_line

WORKER_SERVICES = ("fetcher", "scorer", "summarizer", "publisher")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arxiv-bot", description="Daily arXiv digest service.")
    parser.add_argument("--config", help="path of config.json (default: $ARXIV_BOT_CONFIG or ./config.json)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="one whole pass in this process, then exit")
    run.add_argument("--no-summaries", action="store_true", help="do not call the LLM in this pass")

    worker = sub.add_parser("worker", help="run one service's Celery worker")
    worker.add_argument("service", choices=WORKER_SERVICES)
    worker.add_argument("--concurrency", type=int, default=None,
                        help="worker processes (default: $WORKER_CONCURRENCY or 1)")
    worker.add_argument("--pool", default=None, help=argparse.SUPPRESS)

    sub.add_parser("beat", help="Celery beat with the schedule in config.json")

    trigger = sub.add_parser("trigger", help="enqueue one pass on the running workers")
    trigger.add_argument("--wait", action="store_true", help="block until the pass is published")
    trigger.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait at most (with --wait)")
    trigger.add_argument("--no-summaries", action="store_true", help=argparse.SUPPRESS)

    serve = sub.add_parser("serve", help="the web service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    status = sub.add_parser("status", help="papers per stage, last runs, failures")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", help="apply migrations")
    for command in list(sub.choices.values()) + list(db_sub.choices.values()):
        # `arxiv-bot run --config X` and `arxiv-bot --config X run` both work.
        command.add_argument("--config", dest="config_sub", metavar="PATH", help="path of config.json")
    return parser


def _load(args):
    from shared.logs import setup_logging
    from shared.settings import load

    setup_logging()
    config, settings = load(getattr(args, "config_sub", None) or args.config)
    for warning in config.startup_warnings():
        print(f"arxiv-bot: warning: {warning}", file=sys.stderr)
    return config, settings


def cmd_run(args) -> int:
    from .embedded import run_pass

    config, settings = _load(args)
    return run_pass(config, settings, no_summaries=args.no_summaries)


def cmd_worker(args) -> int:
    from .distributed import run_worker

    config, settings = _load(args)
    return run_worker(config, settings, args.service, args.concurrency, args.pool)


def cmd_beat(args) -> int:
    from .distributed import run_beat

    config, settings = _load(args)
    return run_beat(config, settings)


def cmd_trigger(args) -> int:
    from .distributed import trigger

    config, settings = _load(args)
    return trigger(config, settings, wait=args.wait, timeout=args.timeout, no_summaries=args.no_summaries)


def cmd_serve(args) -> int:
    from .serve import serve

    config, settings = _load(args)
    return serve(config, settings, args.host, args.port)


def cmd_status(args) -> int:
    from .status import show_status

    config, settings = _load(args)
    return show_status(config, settings, as_json=args.json)


def cmd_db(args) -> int:
    from shared.db import check_connection, current_revision, make_engine, safe_url, upgrade

    _config, settings = _load(args)
    engine = make_engine(settings.database_url)
    check_connection(engine)
    upgrade(engine)
    print(f"database {safe_url(engine)} at revision {current_revision(engine)}")
    return 0


COMMANDS = {"run": cmd_run, "worker": cmd_worker, "beat": cmd_beat, "trigger": cmd_trigger,
            "serve": cmd_serve, "status": cmd_status, "db": cmd_db}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except UserError as exc:
        print(f"arxiv-bot: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("arxiv-bot: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("ARXIV_BOT_DEBUG"):
            raise
        print(f"arxiv-bot: error: {exc.__class__.__name__}: {first_line(exc)} (set ARXIV_BOT_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

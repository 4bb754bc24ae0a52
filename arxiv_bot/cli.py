"""The `arxiv-bot` console script (docs/ARCHITECTURE.md "CLI"; also `python -m arxiv_bot`).

Heavy modules (celery, flask, openai, alembic) are imported inside the command that needs them,
so `arxiv-bot run` starts fast. A .env file in the working directory is read first (the real
environment wins). Every failure a user can cause or fix ends as one line on stderr and a
non-zero status: 2 for bad config/usage, 1 for everything else. ARXIV_BOT_DEBUG=1 shows
tracebacks of unexpected errors.
"""
from __future__ import annotations

import argparse
import os
import sys

from shared.errors import ConfigError, UserError, first_line
from shared.redact import redact_text

WORKER_SERVICES = ("fetcher", "scorer", "summarizer", "publisher", "deliverer")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, but not "(default: None)" for options without one."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("arxiv-bot")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    # Accepted before and after the command (`arxiv-bot -v run` and `arxiv-bot run -v`); SUPPRESS
    # keeps a subcommand's defaults from overwriting what was given before it.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--config", dest="config", metavar="PATH",
                        help="path of config.json (default: $ARXIV_BOT_CONFIG or ./config.json)")
    common.add_argument("-v", "--verbose", action="count", dest="verbose",
                        help="more output: -v logs at INFO, -vv at DEBUG (overrides LOG_LEVEL)")
    common.add_argument("-q", "--quiet", action="store_true", dest="quiet",
                        help="less output: errors and the final line only")

    parser = argparse.ArgumentParser(prog="arxiv-bot", formatter_class=_Help, parents=[common],
                                     description="Daily arXiv digest service: fetch, score, summarize, publish.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help_, **kw):
        return sub.add_parser(name, help=help_, description=help_[:1].upper() + help_[1:] + ".",
                              formatter_class=_Help, parents=[common], **kw)

    run = command("run", "one whole pass in this process, then exit")
    run.add_argument("--no-summaries", action="store_true", help="do not call the LLM in this pass")

    worker = command("worker", "run one service's Celery worker")
    worker.add_argument("service", choices=WORKER_SERVICES, help="the service (it consumes its own queue)")
    worker.add_argument("--concurrency", type=int, default=None,
                        help="worker processes (default: $WORKER_CONCURRENCY or 1)")
    worker.add_argument("--pool", default=None, help=argparse.SUPPRESS)

    command("beat", "Celery beat with the schedule in config.json")

    trigger = command("trigger", "enqueue one pass on the running workers")
    trigger.add_argument("--wait", action="store_true", help="block until the pass is published")
    trigger.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait at most (with --wait)")
    trigger.add_argument("--no-summaries", action="store_true", help=argparse.SUPPRESS)

    deliver = command("deliver", "send the digests the outbox still holds (e-mail, webhooks, git)")
    deliver.add_argument("--retry-failed", action="store_true",
                         help="first put failed deliveries back to pending, to send them again")

    serve = command("serve", "the web service")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")

    status = command("status", "papers per stage, last runs, failures")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    db = command("db", "database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", help="apply migrations", description="Apply migrations.", parents=[common])

    prof = command("profile", "the readers this deployment serves")
    prof_sub = prof.add_subparsers(dest="profile_command", required=True, metavar="ACTION")
    plist = prof_sub.add_parser("list", help="every profile with its categories, keywords and channels",
                                description="Every profile with its categories, keywords and channels.",
                                parents=[common])
    plist.add_argument("--json", action="store_true", help="machine-readable output")
    purl = prof_sub.add_parser("url", help="the profile's page and feed URLs (with the key of a private one)",
                               description="The profile's page and feed URLs (with the key of a private one).",
                               parents=[common])
    purl.add_argument("slug", help="the profile's name")
    prot = prof_sub.add_parser("rotate", help="give a private profile a new key (old links stop working)",
                               description="Give a private profile a new key (old links stop working).",
                               parents=[common])
    prot.add_argument("slug", help="the profile's name")

    fb = command("feedback", "a profile's ratings: more like this / less like this")
    fb_sub = fb.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    fadd = fb_sub.add_parser("add", help="rate one paper for a profile (the last rating wins)",
                             description="Rate one paper for a profile (the last rating wins).", parents=[common])
    fadd.add_argument("slug", help="the profile's name")
    fadd.add_argument("arxiv_id", help="the paper's arXiv id (2411.17700, arXiv:2411.17700v2 or its URL)")
    fadd.add_argument("rating", choices=("up", "down"), help="up: more like this; down: less like this")
    fexp = fb_sub.add_parser("export", help="print a profile's ratings as JSON lines {\"id\", \"rating\"}",
                             description="Print a profile's ratings as JSON lines {\"id\", \"rating\"}.",
                             parents=[common])
    fexp.add_argument("slug", help="the profile's name")
    fimp = fb_sub.add_parser("import", help="import ratings: JSON lines, BibTeX, CSL-JSON (Zotero) or a list of ids",
                             description="Import ratings: JSON lines, BibTeX, CSL-JSON (Zotero) or a list of ids. "
                                         "Bibliography entries with an arXiv id count as up.", parents=[common])
    fimp.add_argument("slug", help="the profile's name")
    fimp.add_argument("file", help="the file to read (- for stdin)")

    cfg = command("config", "config.json helpers")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    cfg_sub.add_parser("schema", help="print the JSON Schema of config.json (for editors)",
                       description="Print the JSON Schema of config.json (for editors).", parents=[common])
    cfg_sub.add_parser("check", help="validate config.json and the environment, print warnings",
                       description="Validate config.json and the environment, print warnings.", parents=[common])
    return parser


def _log_level(args) -> str:
    """-v/-q win over LOG_LEVEL; an unknown LOG_LEVEL is an error, not silently INFO."""
    if args.verbose:
        return "DEBUG" if args.verbose > 1 else "INFO"
    if args.quiet:
        return "ERROR"
    level = (os.environ.get("LOG_LEVEL") or "").strip().upper()
    if level and level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL: {os.environ['LOG_LEVEL']!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def _load(args):
    from shared.logs import setup_logging
    from shared.settings import load

    level = _log_level(args)
    if level:
        os.environ["LOG_LEVEL"] = level  # workers, beat and gunicorn read it too
    setup_logging()
    config, settings = load(args.config)
    if not args.quiet:
        for warning in config.startup_warnings():
            print(f"arxiv-bot: warning: {warning}", file=sys.stderr)
    return config, settings


def cmd_run(args) -> int:
    from .embedded import run_pass

    config, settings = _load(args)
    return run_pass(config, settings, no_summaries=args.no_summaries, quiet=args.quiet)


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


def cmd_deliver(args) -> int:
    from .deliver_cli import deliver

    config, settings = _load(args)
    return deliver(config, settings, retry_failed=args.retry_failed)


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


def cmd_profile(args) -> int:
    from . import profiles_cli

    config, settings = _load(args)
    if args.profile_command == "list":
        return profiles_cli.list_profiles(config, settings, as_json=args.json)
    if args.profile_command == "url":
        return profiles_cli.show_urls(config, settings, args.slug)
    return profiles_cli.rotate(config, settings, args.slug)


def cmd_feedback(args) -> int:
    from . import feedback_cli

    config, settings = _load(args)
    if args.feedback_command == "add":
        return feedback_cli.add(config, settings, args.slug, args.arxiv_id, args.rating)
    if args.feedback_command == "export":
        return feedback_cli.export(config, settings, args.slug)
    return feedback_cli.import_file(config, settings, args.slug, args.file)


def cmd_config(args) -> int:
    if args.config_command == "schema":
        import json

        from shared.config import json_schema

        print(json.dumps(json_schema(), indent=2))
        return 0
    config, settings = _load(args)
    from shared import profiles

    readers = profiles.load(config, settings.profiles_dir)  # PROFILES_DIR files too: one line on a bad one
    print(f"{settings.config_path}: ok ({len(config.categories)} categories, "
          f"{len(config.keyword_terms())} keywords, {len(readers.profiles)} profile(s))")
    return 0


COMMANDS = {"run": cmd_run, "worker": cmd_worker, "beat": cmd_beat, "trigger": cmd_trigger, "deliver": cmd_deliver,
            "serve": cmd_serve, "status": cmd_status, "db": cmd_db, "config": cmd_config, "profile": cmd_profile,
            "feedback": cmd_feedback}


def _read_dotenv() -> None:
    """./.env, if present, fills variables the real environment does not set."""
    if not os.path.isfile(".env"):
        return
    try:
        from dotenv import load_dotenv

        load_dotenv(".env", override=False)
    except Exception as exc:  # a broken .env is the user's to fix: say which line
        raise ConfigError(f".env: cannot read it: {first_line(exc)}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name, default in (("quiet", False), ("verbose", 0), ("config", None)):
        if not hasattr(args, name):
            setattr(args, name, default)
    try:
        _read_dotenv()
        return COMMANDS[args.command](args) or 0
    except UserError as exc:
        print(f"arxiv-bot: error: {redact_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("arxiv-bot: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("ARXIV_BOT_DEBUG"):
            raise
        print(f"arxiv-bot: error: {exc.__class__.__name__}: {redact_text(first_line(exc))} "
              "(set ARXIV_BOT_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

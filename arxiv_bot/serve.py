"""`arxiv-bot serve`: the web service under waitress, in WEB_WORKERS processes (default 2).

Why waitress (issue 17): slow or idle clients must not be able to starve the workers. Waitress
reads each request in one asynchronous loop per process (poll(), so thousands of sockets) and
hands a thread (WEB_THREADS of them) only a COMPLETE request: headers and body fully buffered
(the body up to MAX_BODY, spooled to disk past 512 KB). Responses are buffered the same way, so a
client that reads slowly holds memory, not a thread. Hundreds of connections that send their
headers a byte at a time and never finish cost a socket each; /healthz keeps answering. (gunicorn's
gthread worker gives a thread to a connection whose headers are still arriving: eight slow
clients took it down. Granian parses headers asynchronously but streams the body to the thread, so
a slow POST body still holds one.) tests/test_serve_slow_clients.py checks this over real sockets.

Processes: the parent binds the socket, then forks WEB_WORKERS children that each serve it (the
kernel spreads the connections); a child that dies is replaced, SIGTERM/SIGINT stop them all.
The app factory does no I/O; each child builds its own engine on first request.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time

from shared.config import Config
from shared.settings import Settings

MAX_BODY = 1 << 20         # the feedback form is a few hundred bytes; nothing else takes a body
MAX_HEADERS = 64 << 10
CONNECTION_LIMIT = 2000    # per process; past it waitress stops accepting until one closes
IDLE_TIMEOUT = 75          # s: a keep-alive connection idle that long is closed (feed readers reuse them)


def _env_int(name: str, raw: str | None, default: int) -> int:
    from shared.errors import ConfigError

    raw = raw or str(default)
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 256):
        raise ConfigError(f"{name}: expected a whole number from 1 to 256, got {raw[:40]!r}")
    return int(raw)


def _access_log(app):
    """WEB_ACCESS_LOG: one line per request on stdout, the path masked like every URL we print
    (a private profile's ?key= never reaches the log)."""
    from shared.redact import mask_url

    def logged(environ, start_response):
        seen = {}

        def start(status, headers, exc_info=None):
            seen["status"] = status.split(" ", 1)[0]
            return start_response(status, headers, exc_info)
        result = app(environ, start)
        cgi = {name: environ.get(name) or "" for name in ("QUERY_STRING", "PATH_INFO", "REMOTE_ADDR", "REQUEST_METHOD")}
        path = cgi["PATH_INFO"] + (f"?{cgi['QUERY_STRING']}" if cgi["QUERY_STRING"] else "")
        print(f'{cgi["REMOTE_ADDR"] or "-"} "{cgi["REQUEST_METHOD"]} {mask_url(path)[:300]}" '
              f'{seen.get("status", "-")}', flush=True)
        return result
    return logged


def _child(sock: socket.socket, config: Config, settings: Settings, threads: int) -> None:
    """One worker process: waitress on the shared socket until SIGTERM."""
    import waitress

    from web.app import create_app

    try:  # die with the parent even if it is SIGKILLed (Linux)
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # waitress then closes its threads
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    # "Task queue depth is N" is expected under load; the app's own errors are logged by web/errors.py.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    app = create_app(settings=settings, config=config)
    wsgi = _access_log(app) if os.environ.get("WEB_ACCESS_LOG") else app
    server = waitress.create_server(
        wsgi, sockets=[sock], threads=threads, connection_limit=CONNECTION_LIMIT,
        asyncore_use_poll=True,         # select() fails past 1024 descriptors
        channel_timeout=IDLE_TIMEOUT, max_request_body_size=MAX_BODY,
        max_request_header_size=MAX_HEADERS, ident="arxiv-bot", expose_tracebacks=False)
    server.run()  # returns on SIGTERM: waitress catches the SystemExit and closes its threads


def _supervise(sock, config, settings, workers: int, threads: int) -> int:
    children: set[int] = set()
    stopping = False

    def spawn():
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _child(sock, config, settings, threads)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 0
            except BaseException:  # noqa: BLE001 - the parent reports the exit and replaces us
                logging.getLogger("arxiv_bot.serve").exception("web worker failed")
                code = 1
            finally:
                os._exit(code)
        children.add(pid)

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(workers):
        spawn()
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        if not stopping:
            print(f"arxiv-bot serve: web worker {pid} exited ({status}); starting another", file=sys.stderr,
                  flush=True)
            time.sleep(1)  # a worker that dies at once must not fork-loop
            spawn()
    return 0


def serve(config: Config, settings: Settings, host: str, port: int) -> int:
    from shared.db import ensure_schema, make_engine, safe_url
    from shared.errors import UserError

    workers = _env_int("WEB_WORKERS", os.environ.get("WEB_WORKERS"), 2)
    threads = _env_int("WEB_THREADS", os.environ.get("WEB_THREADS"), 8)
    engine = make_engine(settings.database_url)
    ensure_schema(engine)  # an empty SQLite database is brought up to date, as `run` does
    engine.dispose()

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(1024)
    print(f"serving http://{host}:{port}/ (database {safe_url(settings.database_url)}; "
          f"{workers} processes x {threads} threads)", flush=True)
    return _supervise(sock, config, settings, workers, threads)

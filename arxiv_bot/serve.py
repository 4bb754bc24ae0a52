"""`arxiv-bot serve`: the web service under gunicorn (threads; WEB_WORKERS processes, default 2).

The app factory does no I/O; each gunicorn worker builds its own engine on first request.
"""
from __future__ import annotations

import os

from shared.config import Config
from shared.settings import Settings


def serve(config: Config, settings: Settings, host: str, port: int) -> int:
    from gunicorn.app.base import BaseApplication

    from shared.db import ensure_schema, make_engine, safe_url
    from web.app import create_app

    engine = make_engine(settings.database_url)
    ensure_schema(engine)  # an empty SQLite database is brought up to date, as `run` does
    engine.dispose()

    class _Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", int(os.environ.get("WEB_WORKERS") or 2))
            self.cfg.set("threads", int(os.environ.get("WEB_THREADS") or 4))
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("accesslog", "-" if os.environ.get("WEB_ACCESS_LOG") else None)
            self.cfg.set("timeout", 30)
            self.cfg.set("graceful_timeout", 10)
            # Feed readers and proxies reuse connections; gunicorn's 2 s default drops them
            # between polls and races with clients sending on a closing socket.
            self.cfg.set("keepalive", 75)

        def load(self):
            return create_app(settings=settings, config=config)

    print(f"serving http://{host}:{port}/ (database {safe_url(settings.database_url)})", flush=True)
    _Gunicorn().run()
    return 0

"""/healthz: is the database answering, and (when BROKER_URL is set) is the broker reachable.

Returns a JSON body and 200 when every checked component is ok, 503 otherwise. Reasons are one
short line and never include credentials (URLs are not echoed).
"""
from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

from sqlalchemy import text

from shared.errors import first_line
from shared.redact import redact_text

TIMEOUT = 2.0


def _short(exc: BaseException) -> str:
    return f"error: {redact_text(first_line(exc))[:160]}"  # a driver may quote its DSN


def check_database(engine) -> str:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any driver/connection failure is "not healthy", never a 500
        return _short(exc)


def check_broker(url: str) -> str:
    parts = urlsplit(url)
    try:
        if parts.scheme in ("redis", "rediss"):
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
            try:
                client.ping()
            finally:
                client.close()
        else:  # amqp and friends: reachability of the host:port
            port = parts.port or {"amqp": 5672, "amqps": 5671}.get(parts.scheme, 5672)
            with socket.create_connection((parts.hostname or "localhost", port), timeout=TIMEOUT):
                pass
        return "ok"
    except Exception as exc:
        return _short(exc)


def check(get_engine, settings) -> tuple[str, int]:
    """(JSON body, status) for /healthz. `get_engine()` may raise (e.g. an unusable URL)."""
    try:
        db = check_database(get_engine())
    except Exception as exc:
        db = _short(exc)
    result = {"database": db}
    broker = getattr(settings, "broker_url", None)
    if broker:
        result["broker"] = check_broker(broker)
    ok = all(v == "ok" for v in result.values())
    result["status"] = "ok" if ok else "error"
    return json.dumps(result), 200 if ok else 503

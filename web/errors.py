"""Short error responses: one line, never a traceback, in the form the client reads.

JSON ({"error": ..., "status": ...}) for .json routes and /healthz, plain text for the feeds and
README.md (a feed reader shows it as is), a small HTML page for everything else.
"""
from __future__ import annotations

import json
import logging

from flask import Response, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from shared.errors import UserError, first_line

log = logging.getLogger(__name__)

# script-src/connect-src 'self': static/feedback.js (the feedback buttons in place); never inline.
HTML_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
TITLES = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Content Too Large",
          429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


class WebError(Exception):
    """Raised by a view to answer `code` with the one-line `message`."""

    def __init__(self, code: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.headers = code, message, headers or {}


def _one_line(message: str) -> str:
    line = " ".join(str(message).split())
    return line[:300]


def error_response(code: int, message: str, extra: dict | None = None) -> Response:
    message = _one_line(message)
    path = request.path if request else ""
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", **(extra or {})}
    if path.endswith(".json") or path == "/healthz":
        body = json.dumps({"error": message, "status": code})
        return Response(body, status=code, content_type="application/json", headers=headers)
    if path.endswith((".xml", ".md")):
        return Response(message + "\n", status=code, content_type="text/plain; charset=utf-8", headers=headers)
    from shared.render.html import render_error

    headers["Content-Security-Policy"] = HTML_CSP
    return Response(render_error(code, TITLES.get(code, "Error"), message), status=code,
                    content_type="text/html; charset=utf-8", headers=headers)


def register(app) -> None:
    """Every error becomes a short response in the client's format; tracebacks go to the log only."""

    @app.errorhandler(WebError)
    def web_error(exc: WebError):
        return error_response(exc.code, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(SQLAlchemyError)
    def db_error(exc: SQLAlchemyError):
        log.warning("database unavailable: %s", first_line(exc))
        app.extensions["arxiv_bot"].invalidate()
        return error_response(503, "database unavailable; try again shortly")

    @app.errorhandler(UserError)
    def user_error(exc: UserError):  # e.g. an unusable DATABASE_URL; the URL itself is not echoed
        return error_response(503, "database unavailable: check DATABASE_URL")

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("unhandled error on %s", request.path)
        return error_response(500, "internal error")

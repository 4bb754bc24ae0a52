"""Short error responses: one line, never a traceback, in the form the client reads.

JSON ({"error": ..., "status": ...}) for .json routes and /healthz, plain text for the feeds and
README.md (a feed reader shows it as is), a small HTML page for everything else.
"""
from __future__ import annotations

import json

from flask import Response, request

TITLES = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
          503: "Service Unavailable"}


class WebError(Exception):
    """Raised by a view to answer `code` with the one-line `message`."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _one_line(message: str) -> str:
    line = " ".join(str(message).split())
    return line[:300]


def error_response(code: int, message: str) -> Response:
    message = _one_line(message)
    path = request.path if request else ""
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if path.endswith(".json") or path == "/healthz":
        body = json.dumps({"error": message, "status": code})
        return Response(body, status=code, content_type="application/json", headers=headers)
    if path.endswith((".xml", ".md")):
        return Response(message + "\n", status=code, content_type="text/plain; charset=utf-8", headers=headers)
    from shared.render.html import render_error

    from .app import HTML_CSP

    headers["Content-Security-Policy"] = HTML_CSP
    return Response(render_error(code, TITLES.get(code, "Error"), message), status=code,
                    content_type="text/html; charset=utf-8", headers=headers)

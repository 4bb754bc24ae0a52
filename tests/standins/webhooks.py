"""A local HTTP receiver for webhook posts (any path), on a real socket, recording each request.

    with WebhookReceiver() as hooks:
        url = hooks.url("/slack/T0/B0/secret")
        hooks.script["/slack/T0/B0/secret"] = ["429:2", "200"]   # first a 429 with Retry-After: 2
        ... hooks.posts                      # [(monotonic time, path, query, headers, json body)]

A script entry is "<status>" or "<status>:<retry-after>"; "discord429:<s>" answers Discord's
429 (retry_after in the JSON body, no header); "feishu:<code>" answers 200 with that error code.
When a path's script is used up it answers 200 with the platform's usual body. `count_only`
keeps counts, not bodies (benchmarks).
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        r: WebhookReceiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        parts = urlsplit(self.path)
        with r.lock:
            step = r.script.get(parts.path, [])
            action = step.pop(0) if step else "200"
            r.counts[parts.path] += 1
            if not r.count_only:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                r.posts.append((time.monotonic(), parts.path, dict(parse_qsl(parts.query)), dict(self.headers.items()),
                                body, raw))
        status, _, arg = action.partition(":")
        headers, payload = {}, {"ok": True}
        if status == "discord429":
            status, payload = "429", {"message": "You are being rate limited.", "retry_after": float(arg), "global": False}
        elif status == "feishu":
            status, payload = "200", {"code": int(arg), "msg": "error"}
        elif status == "429" and arg:
            headers["Retry-After"] = arg
        elif parts.path.startswith("/feishu"):
            payload = {"code": 0, "msg": "success"}
        data = json.dumps(payload).encode()
        self.send_response(int(status))
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class WebhookReceiver:
    def __init__(self, count_only: bool = False):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.receiver = self
        self.lock = threading.Lock()
        self.script: dict[str, list[str]] = {}
        self.posts: list[tuple] = []
        self.counts: Counter = Counter()
        self.count_only = count_only
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self, path: str) -> list[dict]:
        return [p[4] for p in self.posts if p[1] == path]

    def __enter__(self) -> "WebhookReceiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

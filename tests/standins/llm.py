"""A local OpenAI-compatible server for tests and demos: chat completions and embeddings.

    with LLMStandin(api_key="k") as llm:          # 127.0.0.1, a free port
        client = openai.OpenAI(base_url=llm.base_url, api_key="k")

POST /v1/chat/completions answers a deterministic structured summary (JSON) built from the
title found in the user message (<title>...</title>, else its first line), with usage.
Faults: `mode` applies to every request, `script` to the first requests in order (then `mode`),
`faults` {title substring: [modes]} to the first requests for a paper whose title contains the
substring (then `script`/`mode`), so one run can give each paper its own fault:
  "ok", "429" (Retry-After / retry-after-ms headers), "500", "slow" (sleeps slow_seconds),
  "malformed" (a cut-off JSON body), "html" (a 200 text/html page), "empty" (content ""),
  "null" (content null), "huge" (a very long answer), "markdown" (a Markdown answer),
  "hostile400" / "hostile500" / "hostile429" (an error whose message carries terminal escape
  sequences, control characters and the API key it was given, as `hostile_error(key)` builds it),
  "hostile" (a 200 answer whose summary fields carry the same escape sequences).
`rpm_limit` enforces a provider-style limit: at most ceil(rpm/60) requests per one-second
window (time.monotonic() floored), 429 beyond. `latency` is added to every answer.
`reject_response_format`: 400 "response_format is not supported" when one is sent.
Requests need `Authorization: Bearer <api_key>` (401 otherwise, echoing the key it was given,
as some providers do). POST /v1/embeddings returns hashed bag-of-words vectors (256 dims,
unit length; float lists or base64 as the client asks). `.requests` logs
(monotonic arrival time, path, json body, answered status) for every request once answered;
`.arrivals` logs (time, title) of every chat request when it arrives (a request whose client
was killed mid-answer is there at once); `.answered` logs (arrival time, answer time, title,
status) of every chat request once its answer has been written (fault tests check that an
outage hit a call in flight).

Standalone: python -m tests.standins.llm --port 8002 [--api-key K] [--rpm N] [--latency S]
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import re
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EMBED_DIMS = 256
_TITLE_RE = re.compile(r"<title>(.*?)</title>", re.S)


def summary_for(title: str) -> dict:
    """The deterministic answer the standin gives for a paper titled `title`."""
    return {
        "tldr": f"TL;DR: {title} in one sentence.",
        "contributions": f"Contributions of {title}: a new method.",
        "method": f"Method of {title}: datasets, metrics and baselines.",
        "results": f"Results of {title}: +3.2 points over the baseline.",
        "conclusions": f"Conclusions of {title}: limitations and future work.",
    }


def hostile_error(key: str) -> str:
    """An error message as a careless or hostile provider writes it: terminal colour and
    window-title sequences, a screen clear, 8-bit CSI, a BEL, and the API key echoed in full."""
    return (f"\x1b[31mInvalid request\x1b[0m\x1b]0;pwned\x07: key {key} is not allowed \x1b[2J\x9b1m"
            f"for this model\x07 (key prefix {key[:12]})")


def markdown_for(title: str) -> str:
    s = summary_for(title)
    return (f"# Summary of {title}\n\n**TL;DR**: {s['tldr']}\n\n## 1. Main contributions\n{s['contributions']}\n\n"
            f"## 2. Method and experimental setup\n{s['method']}\n\n## 3. Main results\n{s['results']}\n\n"
            f"## 4. Conclusions and limitations\n{s['conclusions']}\n")


def embed(text: str) -> list[float]:
    """Hashed bag of words: each lower-cased word adds +-1 to one of 256 dims; unit length."""
    vec = [0.0] * EMBED_DIMS
    for word in re.findall(r"\w+", text.lower()):
        h = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big")
        vec[h % EMBED_DIMS] += 1.0 if (h >> 32) & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def _title_of(body: dict) -> str:
    users = [m.get("content") for m in body.get("messages", []) if m.get("role") == "user"]
    text = users[-1] if users and isinstance(users[-1], str) else ""
    m = _TITLE_RE.search(text)
    if m:
        return m.group(1).strip()
    return (text.strip().splitlines() or ["untitled"])[0][:200]


class LLMStandin:
    def __init__(self, api_key: str = "test-key", mode: str = "ok", script: list[str] | None = None,
                 port: int = 0, latency: float = 0.0, slow_seconds: float = 5.0,
                 rpm_limit: float | None = None, retry_after: str | None = "1",
                 retry_after_ms: str | None = None, reject_response_format: bool = False,
                 huge_chars: int = 200_000, faults: dict[str, list[str]] | None = None):
        self.api_key, self.mode, self.script = api_key, mode, list(script or [])
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.latency, self.slow_seconds, self.rpm_limit = latency, slow_seconds, rpm_limit
        self.retry_after, self.retry_after_ms = retry_after, retry_after_ms
        self.reject_response_format, self.huge_chars = reject_response_format, huge_chars
        self.requests: list[tuple[float, str, dict | None, int]] = []
        self.arrivals: list[tuple[float, str]] = []  # (monotonic time, title) of each chat request AS IT ARRIVES
        self.answered: list[tuple[float, float, str, int]] = []  # (arrived, answered, title, status) of chats
        self._lock = threading.Lock()
        self._chat_count = 0
        self._windows: dict[int, int] = {}
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False  # stop() must not wait for a "slow" answer
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "LLMStandin":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "LLMStandin":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def statuses(self, path: str = "/v1/chat/completions") -> list[int]:
        with self._lock:
            return [status for _, p, _, status in self.requests if p == path]

    # -- decisions, under the lock --------------------------------------------------------
    def chat_bodies(self, title_part: str = "", status: int | None = None) -> list[dict]:
        """Chat request bodies (in arrival order) for papers whose title contains `title_part`,
        optionally only those answered with `status`."""
        with self._lock:
            rows = list(self.requests)
        return [body for _, path, body, st in rows if path.rstrip("/") == "/v1/chat/completions"
                and isinstance(body, dict) and title_part in _title_of(body)
                and (status is None or st == status)]

    def _next_mode(self, title: str = "") -> str:
        with self._lock:
            self._chat_count += 1
            n = self._chat_count
            for part, modes in self.faults.items():
                if part in title and modes:
                    return modes.pop(0)
        return self.script[n - 1] if n <= len(self.script) else self.mode

    def _admit(self, arrived: float) -> bool:
        """Provider-style quantised limit: at most ceil(rpm/60) per one-second window."""
        if not self.rpm_limit:
            return True
        per_second = math.ceil(self.rpm_limit / 60.0)
        window = int(arrived)
        with self._lock:
            if self._windows.get(window, 0) >= per_second:
                return False
            self._windows[window] = self._windows.get(window, 0) + 1
            return True

    def _log(self, arrived: float, path: str, body, status: int) -> None:
        with self._lock:
            self.requests.append((arrived, path, body, status))

    def _handler_class(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, payload, headers: dict | None = None, raw: bytes | None = None,
                      content_type: str = "application/json"):
                data = raw if raw is not None else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def do_POST(self):
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                if isinstance(body, dict) and self.path.rstrip("/") == "/v1/chat/completions":
                    with standin._lock:
                        standin.arrivals.append((arrived, _title_of(body)))
                status = standin._answer(self, arrived, body)
                standin._log(arrived, self.path, body, status)
                if isinstance(body, dict) and self.path.rstrip("/") == "/v1/chat/completions":
                    with standin._lock:
                        standin.answered.append((arrived, time.monotonic(), _title_of(body), status))

            def do_GET(self):
                arrived = time.monotonic()
                if self.path.rstrip("/") == "/v1/models" and standin._authorised(self):
                    self._send(200, {"object": "list", "data": [{"id": "standin", "object": "model"}]})
                    standin._log(arrived, self.path, None, 200)
                else:
                    self._send(404, {"error": {"message": "not found"}})
                    standin._log(arrived, self.path, None, 404)

        return Handler

    def _authorised(self, h) -> bool:
        return h.headers.get("Authorization", "") == f"Bearer {self.api_key}"

    def _answer(self, h, arrived: float, body) -> int:
        if not self._authorised(h):
            given = h.headers.get("Authorization", "").removeprefix("Bearer ")
            h._send(401, {"error": {"message": f"Incorrect API key provided: {given}",
                                    "type": "invalid_request_error", "code": "invalid_api_key"}})
            return 401
        path = h.path.rstrip("/")
        if body is None or not isinstance(body, dict):
            h._send(400, {"error": {"message": "request body is not JSON"}})
            return 400
        if path == "/v1/embeddings":
            return self._embeddings(h, body)
        if path != "/v1/chat/completions":
            h._send(404, {"error": {"message": f"no route {h.path}"}})
            return 404
        if self.reject_response_format and "response_format" in body:
            h._send(400, {"error": {"message": "'response_format' of type 'json_object' is not supported",
                                    "type": "invalid_request_error"}})
            return 400
        if not self._admit(arrived):
            h._send(429, {"error": {"message": "Requests rate limit exceeded", "type": "rate_limit"}},
                    headers={"Retry-After": "1"})
            return 429
        mode = self._next_mode(_title_of(body))
        if self.latency:
            self._stopping.wait(self.latency)
        return self._chat(h, body, mode)

    def _chat(self, h, body: dict, mode: str) -> int:
        if mode in ("hostile400", "hostile500", "hostile429"):
            status = int(mode[-3:])
            h._send(status, {"error": {"message": hostile_error(self.api_key), "type": "invalid_request_error"}},
                    headers={"Retry-After": "0"} if status == 429 else None)
            return status
        if mode == "429":
            headers = {}
            if self.retry_after is not None:
                headers["Retry-After"] = self.retry_after
            if self.retry_after_ms is not None:
                headers["retry-after-ms"] = self.retry_after_ms
            h._send(429, {"error": {"message": "Rate limit reached", "type": "rate_limit"}}, headers=headers)
            return 429
        if mode == "500":
            h._send(500, {"error": {"message": "internal server error", "type": "server_error"}})
            return 500
        if mode == "malformed":
            h._send(200, None, raw=b'{"id": "chatcmpl-x", "object": "chat.completion", "choices": [{"ind')
            return 200
        if mode == "html":
            h._send(200, None, raw=b"<html><body>Bad gateway</body></html>", content_type="text/html")
            return 200
        if mode == "slow":
            self._stopping.wait(self.slow_seconds)
        title = _title_of(body)
        if mode == "empty":
            content = ""
        elif mode == "null":
            content = None
        elif mode == "markdown":
            content = markdown_for(title)
        elif mode == "hostile":
            content = json.dumps({k: "\x1b[31m" + v + "\x1b]0;pwned\x07\x9b2J" for k, v in summary_for(title).items()})
        elif mode == "huge":
            s = summary_for(title)
            s["method"] = ("A very long method description. " * (self.huge_chars // 32 + 1))[: self.huge_chars]
            content = json.dumps(s)
        else:
            content = json.dumps(summary_for(title), ensure_ascii=False)
        prompt_tokens = sum(len(str(m.get("content", ""))) // 4 + 4 for m in body.get("messages", []))
        completion_tokens = len(content or "") // 4
        with self._lock:
            n = self._chat_count
        h._send(200, {
            "id": f"chatcmpl-standin-{n}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "standin"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })
        return 200

    def _embeddings(self, h, body: dict) -> int:
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(inputs):
            vec = embed(str(text))
            value = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode() if b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(len(str(t).split()) for t in inputs)
        h._send(200, {"object": "list", "data": data, "model": body.get("model", "standin-embed"),
                      "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
        return 200


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Local OpenAI-compatible stand-in server.")
    ap.add_argument("--port", type=int, default=8002)
    ap.add_argument("--api-key", default="test-key")
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--rpm", type=float, default=None, help="enforce N requests/min, quantised per second")
    ap.add_argument("--latency", type=float, default=0.0)
    args = ap.parse_args(argv)
    server = LLMStandin(api_key=args.api_key, mode=args.mode, port=args.port, rpm_limit=args.rpm,
                        latency=args.latency)
    print(f"LLM stand-in on {server.base_url} (key {args.api_key!r}); Ctrl-C stops", flush=True)
    server.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()

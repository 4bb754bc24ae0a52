"""A local arXiv over real HTTP, for tests and `make demo`.

    with ArxivStandin() as arxiv:          # 127.0.0.1:<free port>
        client = ArxivClient(arxiv.rss_url, arxiv.api_url, ...)

GET /rss/<q> serves a recorded announcement day (default: the 1504-item all-archives day) the way
rss.arxiv.org does for <q>: only items whose categories intersect <q>, announce types recomputed
for <q>, arXiv's order and channel header, HTTP 400 error channel for an unknown archive or
category. GET /api/query serves the same papers through the classic query API (current backend
format) with synthetic submission dates over several days. Per instance: `empty_day`,
`set_day(path)`, `add_api_day(path)` (papers for the API only), and `fail_next(*faults)`: each
fault is used by one request, in order:
"503[:retry_after]", "429[:retry_after]", "301", "html", "truncated", "400", "reset", "slow[:seconds]",
"hold[:seconds]" (answered when the test calls `release()`, or after the seconds: 60), and for
the query API the glitch arXiv is known for, a 200 page that holds fewer entries than it must:
"short" (half the page's entries, true totalResults) and "empty" (no entries and totalResults 0). Feed responses are rendered once per (day, query) and then served from memory.
`edit_item(id, fn)` serves that paper's feed item as fn(item bytes) returns it, raw (control
characters, hostile markup: what lxml cannot write). `requests` logs every request as (time.monotonic(), path, query); `user_agents` their User-Agent.
With `gzip = True` a request that accepts gzip gets its body gzip-encoded, as arXiv does;
`tls=(certfile, keyfile)` serves https.

Full texts at arXiv's paths: GET /html/<id>v<n> and /pdf/<id>v<n> serve the files given to
`add_paper(idv, html=..., pdf=...)` (`add_recorded_papers()` adds tests/data/papers/: one HTML
rendering, three PDFs). A paper without HTML answers arXiv's "No HTML for '<idv>'" page with
HTTP 404 (built from arXiv's template, browse/templates/dissemination/no_html.html); a paper
without a PDF answers 404. Faults (`fail_next`) apply to these paths too.

Standalone: python -m tests.standins.arxiv --port 8001 [--day FILE]
"""
from __future__ import annotations

import argparse
import gzip
import socket
import struct
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from . import arxiv_feeds as feeds

PAPERS_DIR = Path(__file__).resolve().parent.parent / "data" / "papers"
NO_HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>No HTML for '{idv}'</title></head>
<body><main><div class="content">
<h1>No HTML for '{idv}'</h1>
<p>HTML is not available for the source.</p>
<p>This could be due to the source files not being HTML, LaTeX, or a conversion failure.</p>
<p>If you are an author, learn how you can help <a href="https://info.arxiv.org/about/accessibility_html_error_messages.html">HTML conversions for your papers</a>.</p>
</div></main></body></html>
"""
HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>arXiv is down for maintenance</title></head>"
             b"<body><h1>We are down for maintenance</h1></body></html>")


class _Server(ThreadingHTTPServer):
    """Stamps each connection when it is accepted, before a handler thread exists, so the request
    log's times are not skewed by thread start-up on a busy host (the pacing tests read them)."""

    daemon_threads = True

    def process_request(self, request, client_address):
        self.accepted[request] = time.monotonic()
        super().process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server_version = "arxiv-standin/1.0"

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        if self.server.standin.gzip and "gzip" in (self.headers.get("Accept-Encoding") or ""):
            body = gzip.compress(body, mtime=0)
            headers = {**(headers or {}), "Content-Encoding": "gzip"}
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        standin: ArxivStandin = self.server.standin
        parts = urlsplit(self.path)
        stamp = self.server.accepted.pop(self.request, None) or time.monotonic()
        standin._log(stamp, parts.path, unquote(parts.query), self.headers.get("User-Agent", ""),
                     self.headers.get("Accept-Encoding", ""))
        fault = standin._next_fault()
        if fault and self._fault(fault):
            return
        if parts.path.startswith("/rss/"):
            self._rss(standin, unquote(parts.path[len("/rss/"):]), truncate=fault == "truncated")
        elif parts.path == "/api/query":
            self._api(standin, dict(parse_qsl(parts.query)), fault)
        elif parts.path.startswith(("/html/", "/pdf/")):
            self._paper_file(standin, unquote(parts.path))
        else:
            self._send(404, b"not found", "text/plain")

    def _fault(self, fault: str) -> bool:
        """Act out a fault; False means 'serve normally afterwards' (slow, truncated)."""
        kind, _, arg = fault.partition(":")
        if kind in ("503", "429"):
            self._send(int(kind), f"HTTP {kind}".encode(), "text/plain", {"Retry-After": arg or "1"})
        elif kind == "301":  # arXiv moved: the client must not follow blindly
            self._send(301, b"moved", "text/plain", {"Location": "http://127.0.0.1:9/elsewhere"})
        elif kind == "html":
            self._send(200, HTML_PAGE, "text/html; charset=utf-8")
        elif kind == "400":
            day = self.server.standin.day
            body = feeds.render_feed_error("astroph", feeds.bad_query_part(day, ["astroph"]),
                                           day.build_date, day.pub_date)
            self._send(400, body, "application/rss+xml")
        elif kind == "reset":  # RST instead of a response
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        elif kind == "slow":
            time.sleep(float(arg or 2))
            return False
        elif kind == "hold":  # in flight until the test says so: no guess at how long a step takes
            self.server.standin.released.wait(float(arg or 60))
            return False
        elif kind in ("short", "empty"):  # a glitching query-API page: _api acts it out
            return False
        else:
            return False
        return True

    def _paper_file(self, standin, path: str) -> None:
        kind, _, idv = path.strip("/").partition("/")
        body = standin.papers.get(idv.rstrip("/"), {}).get(kind)
        if body is not None:
            self._send(200, body, "text/html; charset=utf-8" if kind == "html" else "application/pdf")
        elif kind == "html":
            self._send(404, NO_HTML_PAGE.format(idv=idv).encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"<html><body><h1>Not Found</h1></body></html>", "text/html; charset=utf-8")

    def _rss(self, standin, q: str, truncate: bool) -> None:
        day = standin.day
        message = feeds.bad_query_part(standin.known_categories, [p for p in q.split("+")])
        if message or not q:
            body = feeds.render_feed_error(q, message or "Empty query.", day.build_date, day.pub_date)
            self._send(400, body, "application/rss+xml")
            return
        key = (id(day), q, standin.empty_day)
        body = standin._rendered.get(key)
        if body is None:
            body = standin._rendered[key] = _edited(feeds.render_feed(day, q, empty=standin.empty_day),
                                                    standin.item_edits)
        self._send(200, body[: len(body) // 2] if truncate else body, "application/rss+xml")

    def _api(self, standin, params: dict, fault: str | None) -> None:
        try:
            page, total, start, size = feeds.api_query(standin.api_papers, params)
        except ValueError as exc:
            self._send(400, feeds.render_api_error(str(exc)), "application/atom+xml")
            return
        if fault == "short":
            page = page[: len(page) // 2]
        elif fault == "empty":
            page, total = [], 0
        truncate = fault == "truncated"
        echo = (f"search_query={params.get('search_query', '')}&id_list={params.get('id_list', '')}"
                f"&start={start}&max_results={size}")
        body = feeds.render_api(page, total, start, size, echo)
        self._send(200, body[: len(body) // 2] if truncate else body, "application/atom+xml")


def _edited(body: bytes, edits: dict) -> bytes:
    """The feed with each edited paper's <item> replaced by its edit's bytes."""
    if not edits:
        return body
    head, *items = body.split(b"<item")
    out = [head]
    for chunk in items:
        item = b"<item" + chunk
        tail = b""
        if b"</channel>" in item:  # the last item carries the channel's end
            cut = item.index(b"</item>") + len(b"</item>")
            item, tail = item[:cut], item[cut:]
        for arxiv_id, fn in edits.items():
            if f"arXiv:{arxiv_id}v".encode() in item:
                item = fn(item)
        out.append(item + tail)
    return b"".join(out)


class ArxivStandin:
    def __init__(self, day_file: Path | str | None = None, port: int = 0, host: str = "127.0.0.1",
                 tls: tuple[str, str] | None = None):
        self.host, self.port = host, port
        self.tls = tls  # (certificate file, key file): serve https
        self.requests: list[tuple[float, str, str]] = []
        self.user_agents: list[str] = []  # one per request, same order as `requests`
        self.accept_encodings: list[str] = []  # likewise, the Accept-Encoding headers
        self.empty_day = False
        self.papers: dict[str, dict[str, bytes]] = {}  # "<id>v<n>" -> {"html": bytes, "pdf": bytes}
        self.gzip = False
        self.item_edits: dict = {}  # arXiv id -> fn(item bytes) -> bytes (see edit_item)
        self._faults: deque[str] = deque()
        self.released = threading.Event()  # see release()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.set_day(day_file or feeds.DEFAULT_DAY)

    def set_day(self, day_file: Path | str) -> None:
        """Serve another announcement day from now on (RSS and API dataset)."""
        self.day = feeds.load_day(day_file)
        self.api_papers = feeds.api_dataset(self.day)
        self._rendered = {}  # (id(day), query, empty_day) -> feed bytes
        # Categories exist whether or not today's items use them (arXiv knows them all): every
        # day served so far counts, so a small replacement day still accepts 'cs.CL'.
        self.known_categories = getattr(self, "known_categories", set()) | self.day.categories

    def add_api_day(self, day_file: Path | str) -> None:
        """Add another day's papers to the query API's dataset only (the feed is unchanged): papers
        a backfill can find that today's feed does not list."""
        extra = feeds.api_dataset(feeds.load_day(day_file))
        self.api_papers = sorted(self.api_papers + extra, key=lambda p: (p.submitted, p.id))

    def add_paper(self, idv: str, html: bytes | None = None, pdf: bytes | None = None) -> None:
        """Serve these files at /html/<idv> and /pdf/<idv> (None: that path answers 404)."""
        self.papers[idv] = {k: v for k, v in (("html", html), ("pdf", pdf)) if v is not None}

    def add_recorded_papers(self) -> list[str]:
        """Serve every file of tests/data/papers/ ("<id>v<n>.html" / ".pdf"); returns the ids."""
        for path in sorted(PAPERS_DIR.glob("*v*.*")):
            if path.suffix in (".html", ".pdf"):
                self.papers.setdefault(path.stem, {})[path.suffix[1:]] = path.read_bytes()
        return sorted(self.papers)

    def paper_requests(self) -> list[str]:
        """Paths of the /html and /pdf requests so far, in order."""
        with self._lock:
            return [path for _, path, _ in self.requests if path.startswith(("/html/", "/pdf/"))]

    def edit_item(self, arxiv_id: str, fn) -> None:
        """Serve the feed item of `arxiv_id` as `fn(item_bytes)` returns it, from now on."""
        self.item_edits[arxiv_id] = fn
        self._rendered = {}

    def fail_next(self, *faults: str) -> None:
        with self._lock:
            self._faults.extend(faults)

    def release(self) -> None:
        """Answer the requests held by a "hold" fault (and any later one at once)."""
        self.released.set()

    def _next_fault(self) -> str | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _log(self, stamp: float, path: str, query: str, user_agent: str, accept_encoding: str) -> None:
        with self._lock:
            self.requests.append((stamp, path, query))
            self.user_agents.append(user_agent)
            self.accept_encodings.append(accept_encoding)

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def rss_url(self) -> str:
        return f"{self.base_url}/rss"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/query"

    def start(self) -> "ArxivStandin":
        self._server = _Server((self.host, self.port), _Handler)
        self._server.accepted = {}
        self._server.standin = self
        if self.tls:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="arxiv-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "ArxivStandin":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Local arXiv stand-in (RSS + query API)")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--day", help="RSS day file to serve (default: the 1504-item day)")
    args = parser.parse_args()
    standin = ArxivStandin(args.day, port=args.port, host=args.host).start()
    print(f"arXiv stand-in: RSS {standin.rss_url}  API {standin.api_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main()

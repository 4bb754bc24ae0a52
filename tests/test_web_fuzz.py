"""Any input, never a 5xx (issue 17.3): Hypothesis throws arbitrary strings, and arbitrary bytes
percent-encoded (invalid UTF-8 included), at every route's parameters, path segments and the
request headers the app reads, against the real create_app on a real SQLite database with a
published day, a public and a private profile and feedback enabled. Every answer is below 500 and
the app logs no error (a traceback is only ever logged by the 500 handler).

The Flask test client drives the app in-process for the big sweep; a second sweep sends raw
requests over a real socket to a real `arxiv-bot serve` (waitress), where the request line itself
carries the bytes.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote, quote_from_bytes

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.config import parse_config
from shared.db import ensure_schema, make_engine, session_factory
from shared.feedback_links import make_token
from shared.settings import Settings
from tests.procs import BIN, _die_with_parent
from tests.test_feedback_web import PROFILES, fill
from web.app import create_app

ROUTES = ["/", "/index.html", "/day/{seg}", "/feed.xml", "/atom.xml", "/feed.json", "/papers.json", "/README.md",
          "/feeds.opml", "/p/{seg}/", "/p/{seg}/feed.xml", "/p/{seg}/papers.json", "/p/{seg}/day/{seg}",
          "/p/pub/", "/p/pub/day/{seg}", "/p/secret/", "/p/secret/feed.json", "/p/secret/day/{seg}",
          "/feedback", "/p/{seg}/feedback", "/p/pub/feedback", "/profiles", "/profiles.opml", "/healthz",
          "/static/style.css", "/static/feedback.js", "/{seg}", "/static/{seg}"]
PARAMS = ["category", "min_score", "q", "limit", "sort", "view", "key", "t", "back"]
VALID = {"category": ["cs.LG", "cs.CL"], "min_score": ["1.5", "-2", "0"], "q": ["LLM", "serving%20llm"],
         "limit": ["1", "2", "5000"], "sort": ["score", "date", "category"], "view": ["full", "compact"],
         "key": ["abc"], "back": ["/"]}
HEADERS = ["Host", "Accept-Encoding", "If-None-Match", "If-Modified-Since", "Accept", "Cookie", "Content-Length"]

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)   # any Unicode, any digit
raw = st.binary(max_size=24)                                                # any bytes, invalid UTF-8 too
interesting = st.sampled_from(["", " ", "0", "-1", "1e400", "nan", "inf", "٣", "５", "²", "1_0", "0x10", "5000",
                               "5001", "cs.LG", "cs.lg", "CS.LG", "score", "date", "compact", "2024-11-28",
                               "2024-02-30", "+2024-11-28", "0000-01-01", "9999-12-31", "\x00", "%", "%zz", "\u2028",
                               "../..", "//evil", "a" * 5000])


def _encoded(value) -> str:
    """A parameter value as it travels in a URL: text UTF-8 percent-encoded, bytes as they are."""
    if isinstance(value, bytes):
        return quote_from_bytes(value, safe="")
    return quote(value, safe="")


# Numbers in every script and form: digits of other scripts, superscripts, fractions, numerals.
# (isdigit()/isnumeric() accept them; int() and float() take some and raise on others.)
_OTHER = [chr(c) for c in range(0x80, 0x30000)]
KINDS = [list("0123456789"), list(".-+eE_ "),
         [c for c in _OTHER if c.isdecimal()],                    # other scripts' digits: int("٣") == 3
         [c for c in _OTHER if c.isdigit() and not c.isdecimal()],  # "²": isdigit() yet int() raises
         [c for c in _OTHER if c.isnumeric() and not c.isdigit()]]  # "½", "Ⅻ"
numberish = st.lists(st.sampled_from(range(len(KINDS))).flatmap(lambda k: st.sampled_from(KINDS[k])),
                     min_size=1, max_size=6).map("".join)
values = st.one_of(text.map(_encoded), raw.map(_encoded), interesting.map(_encoded), numberish.map(_encoded),
                   numberish.map(_encoded))
segments = st.one_of(values.filter(bool), st.sampled_from(["pub", "secret", "nobody", "2024-11-28", "%2F", "."]))


@st.composite
def requests(draw):
    route = draw(st.sampled_from(ROUTES))
    path = route.replace("{seg}", draw(segments), 1).replace("{seg}", draw(segments))
    # One hostile parameter (a route's own, or any name) among valid ones, so that it is the one
    # parsed: a bad neighbour answered 400 first would hide what the hostile value does.
    valid = draw(st.dictionaries(st.sampled_from(sorted(VALID)), st.just(None),
                                 max_size=3))
    pairs = [(name, draw(st.sampled_from(VALID[name]))) for name in valid]
    hostile = draw(st.sampled_from(PARAMS)) if draw(st.integers(0, 4)) else draw(values)
    pairs = [(n, v) for n, v in pairs if n != hostile] + [(hostile, draw(values))]
    if not draw(st.integers(0, 9)):  # now and then a stranger too
        pairs.append((draw(values), draw(values)))
    query = "&".join(f"{name}={value}" for name, value in draw(st.permutations(pairs)))
    headers = {}
    for name in draw(st.lists(st.sampled_from(HEADERS), max_size=3, unique=True)):
        value = draw(st.one_of(text, interesting, st.sampled_from(['"x"', "W/\"y\", *", "gzip;q=2", "br;q=nan",
                                                                      "Mon, 32 Nov 2024 25:00:00 GMT", "arxiv_bot_key=x"])))
        value = value.replace("\r", "").replace("\n", "")
        headers[name] = value.encode("utf-8", "surrogatepass").decode("latin-1")  # bytes as a server sees them
    method = draw(st.sampled_from(["GET", "GET", "GET", "HEAD", "POST"]))
    body = "&".join(f"{n}={draw(values)}" for n in draw(st.lists(st.sampled_from(["t", "back", "x"]), max_size=3)))
    return method, path, query, headers, body


def _config():
    return parse_config({"categories": ["cs.LG"], "profiles": PROFILES, "feedback": {"rate_limit_per_minute": 1e6}})


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    db = f"sqlite:///{tmp}/bot.db"
    engine = make_engine(db)
    ensure_schema(engine)
    fill(session_factory(engine))
    engine.dispose()
    cfg = _config()
    return create_app(Settings.from_env(cfg, Path("config.json"), {"DATABASE_URL": db}), config=cfg)


class _Errors(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record):
        self.records.append(self.format(record))


@pytest.fixture
def errors():
    handler = _Errors()
    logging.getLogger().addHandler(handler)
    try:
        yield handler.records
    finally:
        logging.getLogger().removeHandler(handler)


def test_known_bad_values_are_400_not_500(app, errors):
    client = app.test_client()
    for url in ("/?limit=%D9%A3", "/feed.xml?limit=%EF%BC%95", "/?min_score=%D9%A3", "/day/%D9%A3%D9%A3%D9%A3%D9%A3-11-28",
                "/day/2024-11-%D9%A3", "/?q=%FF%FE", "/p/%FF/", "/feed.xml?category=%00", "/?sort=%C0%80",
                "/feedback?t=%FF", "/p/secret/?key=%FF%00"):
        resp = client.get(url)
        assert 400 <= resp.status_code < 500, (url, resp.status_code, resp.data[:300])
        assert b"Traceback" not in resp.data
    assert errors == []


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 1000)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(requests())
def test_no_input_reaches_a_5xx(app, errors, req):
    method, path, query, headers, body = req
    client = app.test_client()
    url = f"{path}?{query}" if query else path
    kwargs = {"headers": headers}
    if method == "POST":
        kwargs["data"] = body
        kwargs["content_type"] = "application/x-www-form-urlencoded"
        headers.pop("Content-Length", None)
    resp = client.open(url, method=method, **kwargs)
    event(f"status {resp.status_code}")
    assert resp.status_code < 500, (method, url, headers, resp.status_code, resp.data[:300])
    assert errors == [], (method, url, headers, errors[:1])


def test_a_valid_feedback_token_still_records(app):
    """The fuzz must not pass by refusing everything: a well-formed request still works."""
    be = app.extensions["arxiv_bot"]
    token = make_token(be.secret(), "pub", "2411.20001", "up")
    client = app.test_client()
    assert client.get(f"/feedback?t={token}").status_code == 200
    assert client.post("/feedback", data={"t": token}).status_code == 200
    assert client.get("/?limit=2&sort=date&view=compact&min_score=1&q=LLM").status_code == 200


# --- over a real socket, against a real `arxiv-bot serve` ---------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz-serve")
    db = f"sqlite:///{tmp}/bot.db"
    engine = make_engine(db)
    ensure_schema(engine)
    fill(session_factory(engine))
    engine.dispose()
    (tmp / "config.json").write_text(json.dumps({"categories": ["cs.LG"], "profiles": PROFILES}))
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": db, "ARXIV_BOT_CONFIG": str(tmp / "config.json"), "BROKER_URL": "",
           "WEB_WORKERS": "1", "WEB_THREADS": "4", "PYTHONUNBUFFERED": "1"}
    log_path = tmp / "serve.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, cwd=tmp, stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    try:
        deadline = time.monotonic() + 60
        while _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") != 200:
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield port, log_path
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _raw(port: int, request: bytes) -> int | None:
    """The status of one raw HTTP/1.1 request (None if the connection failed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(request)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


@settings(max_examples=int(os.environ.get("FUZZ_SOCKET_EXAMPLES", 150)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(requests())
def test_no_input_reaches_a_5xx_over_a_socket(served, req):
    port, log_path = served
    method, path, query, headers, body = req
    target = (f"{path}?{query}" if query else path).encode("ascii")
    head = [f"{method} ".encode() + target + b" HTTP/1.1", b"Connection: close"]
    headers.setdefault("Host", "127.0.0.1")
    for name, value in headers.items():
        if name != "Content-Length":
            head.append(name.encode() + b": " + value.encode("latin-1"))
    data = body.encode() if method == "POST" else b""
    if method == "POST":
        head += [b"Content-Type: application/x-www-form-urlencoded", b"Content-Length: %d" % len(data)]
    status = _raw(port, b"\r\n".join(head) + b"\r\n\r\n" + data)
    assert status is not None and status < 500, (method, target, headers, status)
    text = log_path.read_text(errors="replace")
    assert "Traceback" not in text and " ERROR " not in text, text[-3000:]

"""Slow clients (issue 17.1): a real `arxiv-bot serve` (2 processes x 2 threads, fewer threads than
attackers on purpose) keeps answering while dozens of connections hold it open the slowloris way,
over real sockets:

- 50 connections send their headers a line at a time and never finish them;
- 20 send a POST /feedback with a large Content-Length and trickle the body;
- 20 connect and send nothing;
- 20 send 40 pipelined requests each and never read the answers.

While they are all open and still trickling, /healthz answers 200, the home page shows the
published paper and /papers.json lists it; after they are gone, the service still answers.
Outcomes only (generous client timeouts); bench/ has no timing for this.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import time

import httpx
import pytest

from shared.db import ensure_schema, make_engine, session_factory
from tests.procs import BIN, _die_with_parent
from tests.test_web import publish

DAY = dt.date(2024, 11, 28)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    db = f"sqlite:///{tmp_path}/bot.db"
    engine = make_engine(db)
    ensure_schema(engine)
    publish(session_factory(engine), DAY, [("2411.00001", "Slow Clients Cannot Starve Us", ["cs.LG"], 5.0,
                                            "An abstract about LLM serving.", False)],
            dt.datetime(2024, 11, 28, 1, tzinfo=dt.timezone.utc))
    engine.dispose()
    (tmp_path / "config.json").write_text(json.dumps({"categories": ["cs.LG"], "keywords": ["LLM"]}))
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": db, "ARXIV_BOT_CONFIG": str(tmp_path / "config.json"),
           "BROKER_URL": "", "WEB_WORKERS": "2", "WEB_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        yield port, tmp_path / "serve.log"
    finally:
        proc.terminate()  # SIGTERM: the parent stops its workers
        proc.wait(timeout=30)
        log.close()


def _open(port: int, first: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if first:
        s.sendall(first)
    return s


def _trickle(socks: list[socket.socket], data: bytes) -> int:
    """One more piece on every connection; how many the server still holds open."""
    alive = 0
    for s in socks:
        try:
            s.sendall(data)
            alive += 1
        except OSError:
            pass
    return alive


def _answers(port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as http:
        health = http.get("/healthz")
        assert health.status_code == 200 and health.json()["database"] == "ok", health.text
        home = http.get("/")
        assert home.status_code == 200 and "Slow Clients Cannot Starve Us" in home.text
        papers = http.get("/papers.json")
        assert papers.status_code == 200 and "2411.00001" in papers.text


def test_dozens_of_slow_connections_do_not_starve_the_workers(served):
    port, log = served
    headers = [_open(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n") for _ in range(50)]
    bodies = [_open(port, b"POST /feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                          b"application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nt=") for _ in range(20)]
    idle = [_open(port, b"") for _ in range(20)]
    # Readers that never read: many pipelined requests each, answers left unread in the socket.
    readers = [_open(port, b"GET /static/style.css HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 40) for _ in range(20)]
    try:
        for round_ in range(3):  # the attackers keep every connection busy between our requests
            assert _trickle(headers, f"X-Slow-{round_}: a\r\n".encode()) == len(headers)
            assert _trickle(bodies, b"a" * 10) == len(bodies)
            _answers(port)
            time.sleep(0.5)
    finally:
        for s in headers + bodies + idle + readers:
            s.close()
    _answers(port)
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]

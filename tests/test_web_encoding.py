"""Compressed responses: `arxiv-bot run` publishes a day from the arXiv stand-in, `arxiv-bot serve`
(gunicorn, two workers, the WSGI fast path) serves it over a real socket, and every feed comes
back, per Accept-Encoding, in identity, gzip and br, each decoding to exactly the bytes of the
file the publisher wrote, with its own ETag, Vary: Accept-Encoding, and correct 304s.
The negotiation itself is fuzzed with Hypothesis.
"""
from __future__ import annotations

import gzip
import http.client
import os
import socket
import subprocess
import time

import brotli
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.procs import BIN, Stack, _die_with_parent, write_config
from tests.standins.arxiv import ArxivStandin
from web.encoding import CODINGS, etag_matches, negotiate, variant_etag

FILES = ("feed.xml", "atom.xml", "feed.json", "papers.json", "README.md")
DECODE = {None: lambda b: b, "gzip": gzip.decompress, "br": brotli.decompress}


def test_negotiation_follows_q_values():
    assert negotiate(None) is None and negotiate("") is None and negotiate("identity") is None
    assert negotiate("gzip") == "gzip" and negotiate("x-gzip") == "gzip"
    assert negotiate("gzip, deflate, br") == "br"              # equal weights: the server prefers br
    assert negotiate("br;q=0.5, gzip") == "gzip"
    assert negotiate("br;q=0, gzip;q=0") is None
    assert negotiate("*") == "br" and negotiate("*;q=0") is None
    assert negotiate("*, br;q=0") == "gzip"
    assert negotiate("gzip;q=bogus") is None and negotiate("gzip;q=2") is None
    assert negotiate("GZIP ; Q=0.3") == "gzip"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_negotiation_never_fails_on_any_header(header):
    got = negotiate(header)
    assert got is None or got in CODINGS
    if got is not None:  # whatever it picks, the header named it (or *) with a weight above 0
        assert got in header.lower() or "*" in header or (got == "gzip" and "x-gzip" in header.lower())


def test_etags_per_coding_and_weak_comparison():
    tag = '"abc"'
    assert variant_etag(tag, "gzip") == '"abc-gzip"' and variant_etag('W/"abc"', "br") == 'W/"abc-br"'
    assert etag_matches('"abc"', tag) and etag_matches('W/"abc"', tag) and etag_matches('"x", "abc"', tag)
    assert etag_matches("*", tag)
    assert not etag_matches('"abc-gzip"', tag) and not etag_matches('"ab"', tag)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_get(port: int, path: str, **headers) -> tuple[int, dict, bytes]:
    """A GET whose body comes back exactly as sent (http.client decodes no content-coding)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Accept-Encoding": "identity", **headers})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture
def served(tmp_path):
    """(port, output dir): a day published by `arxiv-bot run`, served by `arxiv-bot serve`."""
    with ArxivStandin() as arxiv:
        # A fixed public URL: the feeds' self links then do not depend on the request's Host, and
        # the served bytes are the published file's.
        config = write_config(tmp_path, ai_summary={"enabled": False}, feeds={"public_url": "http://feeds.example.org"})
        stack = Stack(tmp_path, {"ARXIV_BOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
                                 "OUTPUT_DIR": str(tmp_path / "output"), "ARXIV_RSS_URL": arxiv.rss_url,
                                 "ARXIV_API_URL": arxiv.api_url, "LLM_API_KEY": "", "BROKER_URL": ""})
        assert "published 2024-11-28" in stack.cli("run").stdout
    port = _free_port()
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env={**stack.env, "WEB_WORKERS": "2"},
                            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if raw_get(port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        yield port, stack.output_dir
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
        log.close()


def test_each_coding_decodes_to_the_published_file(served):
    port, out = served
    for name in FILES:
        written = (out / name).read_bytes()
        tags = {}
        for coding in (None, "gzip", "br"):
            for _ in range(3):  # the first request builds the entry (Flask), later ones hit the fast path
                status, headers, body = raw_get(port, f"/{name}", **({"Accept-Encoding": coding} if coding else {}))
                assert status == 200 and headers.get("content-encoding") == coding, (name, coding, headers)
                assert headers["vary"] == "Accept-Encoding"
                assert int(headers["content-length"]) == len(body)
                assert DECODE[coding](body) == written, (name, coding)
                assert tags.setdefault(coding, headers["etag"]) == headers["etag"]  # stable across workers
        assert len(set(tags.values())) == 3  # a strong ETag per representation
        if name == "feed.xml":
            assert len(body) < len(written) / 3


def test_conditional_gets_with_and_without_compression(served):
    port, _ = served
    _, plain, _ = raw_get(port, "/feed.xml")
    _, zipped, _ = raw_get(port, "/feed.xml", **{"Accept-Encoding": "gzip"})
    for accept, own, other in (("identity", plain, zipped), ("gzip", zipped, plain)):
        for _ in range(2):  # Flask path first, then the fast path
            status, headers, body = raw_get(port, "/feed.xml", **{"Accept-Encoding": accept,
                                                                  "If-None-Match": own["etag"]})
            assert (status, body) == (304, b"") and headers["etag"] == own["etag"]
            assert headers["vary"] == "Accept-Encoding" and "content-encoding" not in headers
            weak = raw_get(port, "/feed.xml", **{"Accept-Encoding": accept, "If-None-Match": "W/" + own["etag"]})
            assert weak[0] == 304  # If-None-Match compares weakly
            # The other coding's tag does not validate this representation: a full 200 in `accept`.
            status, headers, body = raw_get(port, "/feed.xml", **{"Accept-Encoding": accept,
                                                                  "If-None-Match": other["etag"]})
            assert status == 200 and headers["etag"] == own["etag"] and body
        by_date = raw_get(port, "/feed.xml", **{"Accept-Encoding": accept, "If-Modified-Since": own["last-modified"]})
        assert by_date[0] == 304 and by_date[1]["etag"] == own["etag"]

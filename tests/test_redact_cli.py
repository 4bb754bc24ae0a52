"""Secrets in unusual places (issue 17.5): generated URLs carrying generated secrets (in the userinfo,
in ?password=/?token=/?api_key=/?sig=..., percent-encoded or raw, with or without a scheme) go
into DATABASE_URL, BROKER_URL, ARXIV_RSS_URL, SMTP_URL and friends; the REAL `arxiv-bot` CLI runs
(subprocess) and fails or succeeds; the secret never appears in its stdout, stderr or log lines,
while the line still names what it is about (host, "***").

mask_url itself is checked on many more generated URLs without a process per example.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.redact import MASK, mask_url, redact_text, url_secrets
from tests.procs import BIN, write_config
from tests.standins.arxiv import ArxivStandin

# Distinctive secrets: 10+ characters that include characters URLs must escape. Not a piece of
# the messages' own words (a password "LLM_BASE_U" is masked inside the name LLM_BASE_URL too,
# rightly, and the line could no longer say which variable is wrong).
VOCABULARY = ("ARXIV_RSS_URL ARXIV_API_URL ARXIV_PDF_URL ARXIV_HTML_URL LLM_BASE_URL SMTP_URL BROKER_URL "
              "REDIS_URL DATABASE_URL arxiv-bot: error: is not an http(s) URL: it must start with http:// "
              "or https:// has no host name database unreachable fetching announcements").lower()
secrets = st.text(st.sampled_from("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-._~!$&'()*+,;=:@/?#%"),
                  min_size=10, max_size=24).filter(lambda s: sum(c.isalnum() for c in s) >= 6
                                                   and s.lower() not in VOCABULARY)
SECRET_PARAMS = ["password", "sslpassword", "token", "access_token", "api_key", "apikey", "secret", "sig",
                 "X-Amz-Signature", "auth", "PASSWORD"]
hosts = st.sampled_from(["127.0.0.1", "db.example.org", "localhost", "[::1]"])


def _as_written(secret: str, raw: bool) -> str:
    """How an operator writes it in a URL: percent-encoded (right) or pasted raw (careless); raw
    keeps only what cannot end the URL's part early."""
    if raw:
        return "".join(c for c in secret if c not in "@/?#&%=") or "x"
    return quote(secret, safe="")


@st.composite
def secret_urls(draw, schemes=("postgresql", "postgresql+psycopg", "redis", "https", "smtp", "")):
    """(url, [secret values as they appear in it], host)."""
    scheme = draw(st.sampled_from(schemes))
    host = draw(hosts)
    user = draw(st.sampled_from(["", "bot", "arxiv_user"]))
    placed = []
    userinfo = ""
    if draw(st.booleans()) or not scheme:
        pw = _as_written(draw(secrets), draw(st.booleans()))
        placed.append(pw)
        userinfo = f"{user}:{pw}@"
    port = draw(st.sampled_from(["", ":1", ":5432"]))
    path = draw(st.sampled_from(["", "/", "/db", "/rss", "/0"]))
    params = [("sslmode", "require")] if draw(st.booleans()) else []
    for name in draw(st.lists(st.sampled_from(SECRET_PARAMS), max_size=2, unique=True)) or ([] if placed else ["password"]):
        value = _as_written(draw(secrets), False)
        placed.append(value)
        params.append((name, value))
    query = "?" + "&".join(f"{n}={v}" for n, v in draw(st.permutations(params))) if params else ""
    prefix = f"{scheme}://" if scheme else ""
    return f"{prefix}{userinfo}{host}{port}{path}{query}", placed, host


def _leaks(text: str, placed: list[str]) -> list[str]:
    from urllib.parse import unquote

    return [s for s in placed for form in {s, unquote(s)} if len(form) >= 4 and form in text]


@settings(max_examples=500, deadline=None)
@given(secret_urls())
def test_mask_url_hides_every_secret_and_keeps_the_host(case):
    url, placed, host = case
    shown = mask_url(url)
    assert _leaks(shown, placed) == [], (url, shown)
    assert host in shown and MASK in shown
    assert mask_url(shown) == shown  # masking is stable: printing twice shows the same
    text = f"error talking to {url}: refused"  # inside free text too
    assert _leaks(redact_text(text, set()), placed) == []
    assert {s for s in placed if len(s) >= 4} <= url_secrets(url) | {s for s in placed if len(s) < 4}


def test_mask_url_examples():
    assert mask_url("postgresql://u:pw@h/db?password=x&sslmode=require") == \
        "postgresql://u:***@h/db?password=***&sslmode=require"
    assert mask_url("u:secretpw@localhost/db") == "u:***@localhost/db"      # no scheme: same rule
    assert mask_url("https://TOKEN123@github.com/o/r.git") == "https://***@github.com/o/r.git"
    assert mask_url("https://h/x?mail=a@b&api_key=zz#access_token=q") == "https://h/x?mail=a@b&api_key=***#access_token=***"
    assert mask_url("sqlite:///data/arxiv-bot.db") == "sqlite:///data/arxiv-bot.db"
    assert mask_url("/p/secret/?key=abc&limit=2") == "/p/secret/?key=***&limit=2"   # a logged request path
    assert redact_text("database unreachable (postgresql://u:pw@h/db): refused", set()) == \
        "database unreachable (postgresql://u:***@h/db): refused"


def test_smtp_masking_is_the_shared_rule():
    from shared import redact, smtp_url

    assert smtp_url.mask_url is redact.mask_url


def _cli(tmp: Path, env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    full = {**os.environ, "ARXIV_BOT_CONFIG": str(tmp / "config.json"), "BROKER_URL": "", "LLM_API_KEY": "",
            "PYTHONUNBUFFERED": "1", "DATABASE_URL": f"sqlite:///{tmp}/bot.db", **env}
    for name in ("SMTP_URL", "REDIS_URL"):
        full.setdefault(name, "")
    args = (*args, "-v") if args[0] == "run" else args  # -v: the INFO and DEBUG log lines too
    return subprocess.run([str(BIN), *args], env=full, cwd=tmp, capture_output=True, text=True, timeout=timeout)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("redact")
    write_config(tmp, ai_summary={"enabled": False})
    return tmp


CLI_SETTINGS = settings(max_examples=int(os.environ.get("REDACT_EXAMPLES", 12)), deadline=None,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@CLI_SETTINGS
@given(secret_urls(schemes=("postgresql", "postgresql+psycopg", "")))
def test_database_url_secrets_never_printed(workdir, case):
    """Unreachable (port 1 / nothing listening) or malformed (no scheme): one line, masked."""
    url, placed, host = case
    # Nothing listens on port 1: never the test machine's own PostgreSQL.
    url = re.sub(re.escape(host) + r"(:[0-9]+)?", lambda _m: f"{host}:1", url, count=1)
    res = _cli(workdir, {"DATABASE_URL": url}, "status")
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "Traceback" not in out, out
    assert _leaks(out, placed) == [], (url, out)
    assert "DATABASE_URL" in out or "database unreachable" in out or "no database" in out, out


@CLI_SETTINGS
@given(st.sampled_from(["ARXIV_RSS_URL", "ARXIV_API_URL", "ARXIV_PDF_URL", "LLM_BASE_URL", "SMTP_URL"]),
       secret_urls(schemes=("ftp", "gopher", "")))
def test_bad_configured_urls_are_refused_masked(workdir, name, case):
    url, placed, _host = case
    res = _cli(workdir, {name: url}, "config", "check")
    out = res.stdout + res.stderr
    assert res.returncode == 2 and name in out and "Traceback" not in out, out
    assert _leaks(out, placed) == [], (url, out)


@settings(max_examples=int(os.environ.get("REDACT_BROKER_EXAMPLES", 3)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(secret_urls(schemes=("redis",)))
def test_broker_url_secrets_never_printed(workdir, case):
    url, placed, host = case
    port = _closed_port()
    url = url.replace(":5432", "").replace(":1", "").replace(host, f"127.0.0.1:{port}", 1)
    res = _cli(workdir, {"BROKER_URL": url}, "trigger")
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "Traceback" not in out, out
    assert _leaks(out, placed) == [], (url, out)


@settings(max_examples=int(os.environ.get("REDACT_RUN_EXAMPLES", 3)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(secrets, st.booleans())
def test_rss_url_credentials_not_in_progress_or_logs(tmp_path_factory, secret, raw):
    """A pass through an ARXIV_RSS_URL with credentials (the stand-in accepts them): the progress
    line and every log line (-v) show it masked; a failing one (nothing listening, a token in the
    query) leaves only masked URLs in the error lines too."""
    tmp = tmp_path_factory.mktemp("rss")
    write_config(tmp, ai_summary={"enabled": False})
    pw = _as_written(secret, raw)
    with ArxivStandin() as arxiv:
        base = arxiv.rss_url.replace("http://", f"http://reader:{pw}@")
        res = _cli(tmp, {"ARXIV_RSS_URL": base, "ARXIV_API_URL": arxiv.api_url, "OUTPUT_DIR": str(tmp / "out")},
                   "run")
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-3000:]
        assert "fetching announcements" in out and f"reader:{MASK}@" in out, out[-3000:]
        assert _leaks(out, [pw]) == [], out
        published = "".join(p.read_text(errors="replace") for p in (tmp / "out").rglob("*") if p.is_file())
        assert published and _leaks(published, [pw]) == []
    dead = f"http://reader:{pw}@127.0.0.1:{_closed_port()}/rss"
    res = _cli(tmp, {"ARXIV_RSS_URL": dead, "DATABASE_URL": f"sqlite:///{tmp}/dead.db"}, "run", timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "Traceback" not in out, out[-3000:]
    assert f"reader:{MASK}@" in out and _leaks(out, [pw]) == [], out[-3000:]

"""Fault-injection helpers: the end-of-test invariant, and real outages of real servers.

`check_invariants` is what every fault test ends with (issue 8): every paper of the pass in a
terminal state, no duplicate rows, at most 1 + kills paid provider calls per paper, and every
published file parses with no temporary file left behind.

Outages act on real servers, never on ones other tests share: Redis restarts happen on the
test's own redis-server (conftest's `private_redis`: SHUTDOWN NOSAVE loses every message);
`terminate_pg_backends` and `pg_unavailable` act on one test database only, never the whole
server.
"""
from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import feedparser
from sqlalchemy import create_engine, func, select, text

from shared.models import (PASS_PUBLISHED, SUM_TERMINAL, Paper, Pass, PassItem, PassProfile, ProfileItem, Publication,
                           Summary, SummaryJob)
from tests.conftest import PG_ADMIN_URL
from tests.procs import BIN, Stack, Worker, _die_with_parent, write_config

LLM_KEY = "sk-test-faults-secret"


def wait_until(predicate, timeout: float = 120, interval: float = 0.2, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value (returned); TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached after {timeout:.0f}s")
        time.sleep(interval)


def make_stack(tmp_path: Path, db_url: str, arxiv, llm, broker_url: str | None = None, name: str = "run",
               **cfg) -> Stack:
    """A deployment under test: fast sweep (2 s interval, 5 s stuck age), short summary leases,
    no arXiv pacing, a generous LLM rate limit; `cfg` overrides config.json keys."""
    home = tmp_path / name
    home.mkdir()
    ai = {"requests_per_minute": 1200, "tokens_per_minute": 10_000_000, "lease_seconds": 15, "timeout": 20,
          "max_retries": 4, **cfg.pop("ai_summary", {})}
    config = write_config(home, ai_summary=ai, **cfg)
    env = {"ARXIV_BOT_CONFIG": str(config), "DATABASE_URL": db_url, "OUTPUT_DIR": str(home / "output"),
           "ARXIV_RSS_URL": arxiv.rss_url, "ARXIV_API_URL": arxiv.api_url, "LLM_BASE_URL": llm.base_url,
           "LLM_API_KEY": LLM_KEY, "BROKER_URL": broker_url or "", "REDIS_URL": broker_url or "",
           "BEAT_SCHEDULE_FILE": str(home / "celerybeat-schedule")}
    return Stack(home, env)


def start_beat(stack: Stack) -> Worker:
    """A real `arxiv-bot beat` (sends the sweep every sweep.interval_seconds)."""
    log = stack.tmp / f"beat-{len(stack.workers)}.log"
    proc = subprocess.Popen([str(BIN), "beat"], env=stack.env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            cwd=stack.tmp, preexec_fn=_die_with_parent)
    beat = Worker("beat", proc, log)
    stack.workers.append(beat)
    wait_until(lambda: "Starting..." in beat.output() or proc.poll() is not None, 60, what="beat start")
    return beat


def engine(db_url: str):
    return create_engine(db_url, pool_pre_ping=True)


def passes(db_url: str) -> list[tuple[int, str]]:
    eng = engine(db_url)
    try:
        with eng.connect() as c:
            return [tuple(r) for r in c.execute(select(Pass.id, Pass.status).order_by(Pass.id))]
    finally:
        eng.dispose()


def wait_pass(db_url: str, statuses=("published",), timeout: float = 180) -> int:
    """Wait until the newest pass reaches one of `statuses`; returns its id."""
    def done():
        rows = passes(db_url)
        return rows[-1][0] if rows and rows[-1][1] in statuses else None
    return wait_until(done, timeout, 0.3, what=f"pass in {statuses}")


def _paid_calls(llm, title: str) -> int:
    """Answered (200) chat requests whose user message carries this title."""
    n = 0
    for _, path, body, status in list(llm.requests):
        if status != 200 or not path.endswith("/chat/completions") or not isinstance(body, dict):
            continue
        if any(isinstance(m.get("content"), str) and title in m["content"] for m in body.get("messages", [])):
            n += 1
    return n


def check_invariants(db_url: str, output_dir: Path, llm=None, kills: int = 0, pass_id: int | None = None,
                     status: str = PASS_PUBLISHED, garbled: int = 0) -> dict:
    """Assert the issue-8 invariant for a finished pass; returns counts for further assertions:
    {"pass_id", "items", "ranked", "states": Counter(summary_state), "calls": {paper_id: n}}.

    Paid calls are answers with HTTP 200 carrying the paper's title (429/5xx are not billed).
    `garbled`: injected 200 answers that are unusable (timed out, malformed, HTML) and so
    rightly retried; together the papers may exceed 1 + kills calls by at most that many."""
    eng = engine(db_url)
    try:
        with eng.connect() as c:
            if pass_id is None:
                pass_id = c.scalar(select(func.max(Pass.id)))
            p = c.execute(select(Pass).where(Pass.id == pass_id)).one()
            assert p.status == status, (p.status, p.error, p.note)
            if status == "failed":
                assert p.error, "a failed pass without a visible reason"
            assert c.scalar(select(func.count()).select_from(Pass).where(Pass.active == 1)) == 0
            n_items = c.scalar(select(func.count()).select_from(PassItem).where(PassItem.pass_id == pass_id))
            # The default profile's digest, with each paper's summary state (its job's, or the
            # item's own when no summary was wanted or summaries were off).
            items = c.execute(select(ProfileItem.paper_id, ProfileItem.rank,
                                     func.coalesce(SummaryJob.state, ProfileItem.summary_state).label("summary_state"),
                                     func.coalesce(SummaryJob.note, ProfileItem.note).label("note"), Paper.title)
                              .join(Paper, Paper.id == ProfileItem.paper_id)
                              .outerjoin(SummaryJob, (SummaryJob.pass_id == ProfileItem.pass_id)
                                         & (SummaryJob.paper_id == ProfileItem.paper_id)
                                         & (SummaryJob.language == ProfileItem.language))
                              .where(ProfileItem.pass_id == pass_id, ProfileItem.profile == "default")).all()
            unscored = c.scalar(select(func.count()).select_from(PassProfile).where(
                PassProfile.pass_id == pass_id, PassProfile.scored.is_(False)))
            dup = lambda q: c.execute(q.having(func.count() > 1)).all()  # noqa: E731
            assert not dup(select(Paper.id).group_by(Paper.id))
            assert not dup(select(PassItem.pass_id, PassItem.paper_id).group_by(PassItem.pass_id, PassItem.paper_id))
            key = (Summary.paper_id, Summary.version, Summary.model, Summary.prompt_hash, Summary.language,
                   Summary.input_mode)
            assert not dup(select(*key).group_by(*key))
            pubs = c.execute(select(Publication.day, Publication.pass_id)).all()
    finally:
        eng.dispose()
    ranked = sorted(items, key=lambda it: it.rank)
    if status == PASS_PUBLISHED:
        assert n_items and not unscored, "unscored profiles in a published pass"
        for it in ranked:
            assert it.summary_state is None or it.summary_state in SUM_TERMINAL, (it.paper_id, it.summary_state)
            if it.summary_state in ("failed", "budget", "skipped"):
                assert it.note, f"{it.paper_id}: {it.summary_state} without a reason"
        assert [pid for _, pid in pubs].count(pass_id) == 1, pubs
        check_outputs(output_dir, [it.paper_id for it in ranked])
    calls = {}
    if llm is not None:
        calls = {it.paper_id: _paid_calls(llm, it.title) for it in ranked}
        over = {pid: n for pid, n in calls.items() if n > 1 + kills}
        assert sum(n - 1 - kills for n in over.values()) <= garbled, \
            f"papers paid more than 1 + {kills} times (allowed extra {garbled}): {over}"
    return {"pass_id": pass_id, "items": n_items, "ranked": len(ranked),
            "states": Counter(it.summary_state for it in ranked), "calls": calls}


def check_outputs(output_dir: Path, ranked_ids: list[str]) -> None:
    """Every published file parses, papers.json is the ranked list, no temporary file is left."""
    leftovers = [str(p) for p in output_dir.rglob("*.tmp")]
    assert not leftovers, f"half-written files left: {leftovers}"
    papers = json.loads((output_dir / "papers.json").read_text())
    assert [p["id"] for p in papers] == ranked_ids
    for name in ("feed.xml", "atom.xml"):
        feed = feedparser.parse((output_dir / name).read_bytes())
        assert not feed.bozo, (name, feed.get("bozo_exception"))
        assert feed.entries, name
    json.loads((output_dir / "feed.json").read_text())
    # The digest lists exactly the ranked papers, in rank order, in the original bot's layout.
    readme = (output_dir / "README.md").read_text()
    assert readme.startswith("# ") and f"**Total Papers Found**: {len(papers)}" in readme
    shown = re.findall(r"^\*\*ArXiv ID\*\*: (\S+?)v(\d+)\s*$", readme, re.M)
    assert shown == [(p["id"], str(p["version"])) for p in papers], shown


# -- outages -------------------------------------------------------------------------------------

def _db_name(db_url: str) -> str:
    return db_url.rsplit("/", 1)[1].split("?")[0]


def terminate_pg_backends(db_url: str) -> int:
    """Kill every server process connected to this test database; returns how many."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            return len(c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE datname = :d AND pid <> pg_backend_pid()"),
                                 {"d": _db_name(db_url)}).all())
    finally:
        admin.dispose()


def _allow_connections(db_url: str, allow: bool) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{_db_name(db_url)}" ALLOW_CONNECTIONS {str(allow).lower()}'))
    finally:
        admin.dispose()


@contextmanager
def pg_unavailable(db_url: str, seconds: float = 10.0):
    """This test database refuses connections for `seconds` (existing ones are terminated);
    the body runs during the outage. Connections are allowed again afterwards, always."""
    _allow_connections(db_url, False)
    try:
        terminate_pg_backends(db_url)
        started = time.monotonic()
        yield
        rest = seconds - (time.monotonic() - started)
        if rest > 0:
            time.sleep(rest)
    finally:
        _allow_connections(db_url, True)


def in_thread(fn, *args, **kwargs) -> threading.Thread:
    t = threading.Thread(target=fn, args=args, kwargs=kwargs, daemon=True)
    t.start()
    return t


# -- hostile feeds ------------------------------------------------------------------------------

class RawFeed:
    """A local HTTP server answering every GET with the same bytes as application/rss+xml: for
    feeds the arXiv stand-in cannot carry (invalid UTF-8, a DTD, text nodes over libxml2's limit)."""

    def __init__(self, body: bytes):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        feed = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                feed.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(feed.body)))
                self.end_headers()
                self.wfile.write(feed.body)

        self.body, self.hits = body, 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def rss_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/rss"

    api_url = property(lambda self: f"http://127.0.0.1:{self._server.server_address[1]}/api/query")

    def __enter__(self) -> "RawFeed":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def recorded_feed(q: str = "cs.AI+cs.CL+cs.DC+cs.LG") -> tuple[bytes, list[bytes]]:
    """The recorded day as arXiv serves it for `q`, split into (head+tail template, items):
    join with `assemble` after editing items."""
    from tests.standins import arxiv_feeds

    body = arxiv_feeds.render_feed(arxiv_feeds.load_day(arxiv_feeds.DEFAULT_DAY), q)
    first, last = body.index(b"<item"), body.rindex(b"</item>") + len(b"</item>")
    items = [b"<item" + chunk for chunk in body[first:last].split(b"<item")[1:]]
    return body[:first] + b"%ITEMS%" + body[last:], items


def assemble(template: bytes, items: list[bytes]) -> bytes:
    return template.replace(b"%ITEMS%", b"".join(items))

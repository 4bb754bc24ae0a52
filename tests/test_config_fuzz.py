"""Config that validates must work (issue 17 point 6), fuzzed through the real CLI.

- Hypothesis mutates the project's config.json (one or more keys set to hostile values: NaN,
  +-Infinity, 1e308, huge and negative integers, empty/odd strings, "(", wrong types, a BOM, deep
  nesting) and runs `arxiv-bot config check` (the CLI's own main(), in this process, for speed):
  either exit 0, or exit 2 with exactly one "arxiv-bot: error:" line. Never a traceback, never the
  "set ARXIV_BOT_DEBUG" line of an unexpected exception.
- Accepted configs at the edges of every range, and some the fuzzer accepted, then run a whole
  `arxiv-bot run` (a real process) against the arXiv stand-in: exit 0 and a papers.json that is
  strict JSON (no NaN/Infinity). The issue's examples are refused by `run` with one line before
  any request reaches the stand-in.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arxiv_bot.cli import main
from services.scorer.matcher import compile_matcher
from shared import profiles
from shared.config import parse_config
from tests.faults import make_stack
from tests.procs import ROOT
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin

BASE = json.loads((ROOT / "config.json").read_text())
NUM_KEYS = ["min_score", "author_weight", "max_papers", "days_back", "feeds.window_days", "feeds.max_items",
            "fetch.timeout_seconds", "fetch.min_interval_seconds", "fetch.max_retries", "sweep.interval_seconds",
            "sweep.stuck_after_seconds", "ai_summary.temperature", "ai_summary.max_tokens", "ai_summary.timeout",
            "ai_summary.requests_per_minute", "ai_summary.tokens_per_minute", "ai_summary.daily_token_budget",
            "ai_summary.lease_seconds", "ai_summary.max_input_tokens", "interests.weight", "feedback.weight",
            "feedback.min_ratings", "delivery.timeout_seconds", "delivery.lease_seconds", "max_papers_to_summarize"]
STR_KEYS = ["feeds.public_url", "ai_summary.base_url", "ai_summary.language", "ai_summary.prompt_file", "contact",
            "schedule.timezone", "schedule.minute", "schedule.hour", "schedule.day_of_week", "schedule.day_of_month",
            "schedule.month_of_year"]
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30),
                    st.integers(-5, 5000), st.floats(-2e6, 2e6),
                    st.sampled_from([0, -1, 1, 0.05, 1e308, -1e308, 1e-308, 5e-324, 2**63, 2**64, 10**400, 1000,
                                     1000.0001, 3650, 3651, 1e6, -1e6]))
TEXTS = st.one_of(st.text(max_size=30), st.sampled_from(["", " ", "(", ")", "*", "-", "C++", "\x00", "\x1b[31m",
                                                        "javascript:alert(1)", "http://", "https://:80", "file:///x",
                                                        "http://a b", "https://ok.example.org/x", "Asia/Tokyo",
                                                        "../../etc/passwd", "cs.LG", "LLM", "Ada Lovelace"]))
KEYWORD = st.one_of(TEXTS, st.fixed_dictionaries({"term": TEXTS}, optional={"weight": NUMBERS,
                                                                             "aliases": st.lists(TEXTS, max_size=2)}))
WRONG_TYPE = st.one_of(st.booleans(), st.none(), st.lists(st.integers(), max_size=2), st.dictionaries(TEXTS, TEXTS,
                                                                                                     max_size=1))
CHANGE = st.one_of(
    st.tuples(st.sampled_from(NUM_KEYS), NUMBERS),
    st.tuples(st.sampled_from(STR_KEYS), TEXTS),
    st.tuples(st.sampled_from(["keywords", "exclude_keywords"]), st.lists(KEYWORD, max_size=3)),
    st.tuples(st.just("authors"), st.lists(TEXTS, max_size=3)),
    st.tuples(st.just("categories"), st.lists(TEXTS | st.sampled_from(["cs.LG", "math", "astro-ph.CO"]), max_size=3)),
    st.tuples(st.just("category_weights"), st.dictionaries(st.sampled_from(["cs.LG", "cs", "cs.AI"]) | TEXTS, NUMBERS,
                                                           max_size=2)),
    st.tuples(st.sampled_from(NUM_KEYS + STR_KEYS), WRONG_TYPE),
)


def _set(cfg: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    node = cfg
    for part in parents:
        node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else node
    node[last] = value


def config_check(text: bytes | str) -> tuple[int, str, str]:
    """`arxiv-bot config check` on a config file with this content: (status, stdout, stderr)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        out, err = io.StringIO(), io.StringIO()
        old = {k: os.environ.get(k) for k in ("LOG_LEVEL", "ARXIV_BOT_DEBUG")}
        os.environ.pop("ARXIV_BOT_DEBUG", None)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["config", "check", "-q", "--config", str(path)])
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return code, out.getvalue(), err.getvalue()


def assert_one_line_or_ok(code: int, out: str, err: str) -> None:
    assert "Traceback" not in err and "ARXIV_BOT_DEBUG" not in err, err
    if code == 0:
        assert ": ok (" in out, out
    else:
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("arxiv-bot: error:"), (code, err)
        assert "\x1b" not in err


ACCEPTED: list[dict] = []


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(CHANGE, min_size=1, max_size=3),
       bom=st.booleans())
def test_fuzzed_config_is_refused_in_one_line_or_accepted(changes, bom):
    cfg = json.loads(json.dumps(BASE))
    for key, value in changes:
        _set(cfg, key, value)
    text = json.dumps(cfg, allow_nan=True)
    code, out, err = config_check(("\ufeff" if bom else "") + text)
    assert_one_line_or_ok(code, out, err)
    if code == 0:
        works(cfg)
        if len(ACCEPTED) < 200:
            ACCEPTED.append(cfg)


def works(cfg: dict) -> None:
    """What used to fail only after the fetch, done at once for an accepted config: the matcher
    compiles, a score is finite JSON, the feed window is a date, the profiles resolve."""
    config = parse_config(cfg)
    matcher = compile_matcher(config)
    result = matcher.score("LLM C++ inference (attention) training", "An LLM for LLM inference. " * 5,
                           ["Ada Lovelace", "Bo Li"], ["cs.LG", "cs.AI"])
    assert math.isfinite(result.score) and json.loads(json.dumps(result.score, allow_nan=False)) == result.score
    assert dt.date(2024, 11, 28) - dt.timedelta(days=config.feeds.window_days + config.days_back)
    assert profiles.load(config, None).profiles
    numbers = [v for v in _leaves(config.model_dump()) if isinstance(v, float)]
    assert all(math.isfinite(v) for v in numbers)


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


EDGE_VALUES = [float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 10**30, -10**30, 2**63, 0, -1, 5e-324]


@pytest.mark.parametrize("key", NUM_KEYS + ["keywords", "category_weights"])
def test_every_number_at_its_edges(key):
    """Each numeric key with every edge value: refused in one line, or accepted and working."""
    for value in EDGE_VALUES:
        cfg = json.loads(json.dumps(BASE))
        if key == "keywords":
            cfg["keywords"] = [{"term": "LLM", "weight": value}, {"term": "inference", "weight": value}]
        elif key == "category_weights":
            cfg["category_weights"] = {"cs.LG": value}
        else:
            _set(cfg, key, value)
        code, out, err = config_check(json.dumps(cfg, allow_nan=True))
        assert_one_line_or_ok(code, out, err)
        if code == 0:
            works(cfg)


@pytest.mark.parametrize("text", ["[" * 100_000, "\ufeff{}", "{\"a\": 1e400}", "\x00", "{\"keywords\": [\"\\u0000\"]}",
                                  '{"\\u001b[31mkeywords": []}', "{\"profiles\": {\"x\": {\"keywords\": [\"(\"]}}}"])
def test_odd_documents(text):
    code, out, err = config_check(text)
    assert_one_line_or_ok(code, out, err)


def test_bom_is_read_like_any_other_config():
    plain = config_check(json.dumps(BASE))
    with_bom = config_check(b"\xef\xbb\xbf" + json.dumps(BASE).encode())
    assert plain[0] == with_bom[0] == 0
    assert plain[1].split(": ok", 1)[1] == with_bom[1].split(": ok", 1)[1]  # same counts (paths differ)


ISSUE_EXAMPLES = [({"min_score": float("nan")}, "'min_score'"),
                  ({"keywords": [{"term": "LLM", "weight": 1e308}]}, "'keywords.weight'"),
                  ({"feeds": {"window_days": 10**9}}, "'feeds.window_days'"),
                  ({"keywords": [""]}, "'keywords'"), ({"keywords": ["("]}, "'keywords'"),
                  ({"feeds": {"public_url": "javascript:alert(1)"}}, "'feeds.public_url'"),
                  ({"ai_summary": {"base_url": "file:///etc/passwd"}}, "'ai_summary.base_url'")]
EDGES = {"min_score": -1e6, "author_weight": 1000, "category_weights": {"cs.LG": 1000, "cs.AI": -1000},
         "keywords": [{"term": k, "weight": 1000} for k in ("LLM", "C++", "Inference", "Training", "Attention")],
         "feeds": {"window_days": 3650, "max_items": 5000}, "max_papers": 10_000}


def test_examples_refused_before_any_request_and_edges_work(tmp_path, sqlite_url):
    with ArxivStandin() as arxiv, LLMStandin() as llm:
        for n, (cfg, key) in enumerate(ISSUE_EXAMPLES):
            stack = make_stack(tmp_path, sqlite_url, arxiv, llm, name=f"bad{n}", **cfg)
            res = stack.cli("run", "--no-summaries", check=False, timeout=120)
            lines = res.stderr.strip().splitlines()
            assert res.returncode == 2 and len(lines) == 1 and key in lines[0], (cfg, res.stderr)
        assert arxiv.requests == []  # refused at load time: nothing was fetched
        # Values at the edge of every range, then what the fuzzer accepted (a few): whole passes.
        picks = [EDGES] + ACCEPTED[-3:]
        for n, cfg in enumerate(picks):
            db = f"sqlite:///{tmp_path}/edge{n}.sqlite"
            stack = make_stack(tmp_path, db, arxiv, llm, name=f"edge{n}", **{k: v for k, v in cfg.items()
                                                                              if k not in ("fetch", "sweep")})
            stack.env["LLM_API_KEY"] = ""
            res = stack.cli("run", "--no-summaries", check=False, timeout=300)
            assert "Traceback" not in res.stderr and "ARXIV_BOT_DEBUG" not in res.stderr, res.stderr
            assert res.returncode == 0, (cfg, res.stderr[-2000:])
            papers = json.loads((stack.output_dir / "papers.json").read_text(),
                                parse_constant=lambda c: pytest.fail(f"papers.json has {c}"))
            if n == 0:
                assert papers and papers[0]["score"] >= 1000


@pytest.mark.parametrize("name", ["ARXIV_RSS_URL", "ARXIV_API_URL", "ARXIV_PDF_URL", "ARXIV_HTML_URL", "LLM_BASE_URL"])
@pytest.mark.parametrize("url", ["javascript:alert(1)", "file:///etc/passwd", "http://", "https://:443/x",
                                 "http://a b/", "http://h:99999/", "ftp://h/", "https://user:hunter2@/x"])
def test_every_configured_url_is_http_with_a_host(name, url):
    from shared.config import load_config
    from shared.errors import ConfigError
    from shared.settings import Settings

    config = load_config(ROOT / "config.json")
    with pytest.raises(ConfigError) as info:
        Settings.from_env(config, ROOT / "config.json", env={name: url, "LLM_API_KEY": "k"})
    message = str(info.value)
    assert message.startswith(f"{name}: ") and "\n" not in message and "hunter2" not in message
    code, out, err = config_check(json.dumps({**BASE, "feeds": {"public_url": url}}))
    assert code == 2 and "'feeds.public_url'" in err and "hunter2" not in err


CRON_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(CRON_FIELDS),
       value=st.text(alphabet="0123456789*/-,monfriwedsatuh ", max_size=12) | st.sampled_from(
           ["*/15", "0-23/2", "mon-fri", "monday-friday", "1,15", "*/0", "7", "60", "0-59", "sun", "0/1", "* ", " 0-23/2, 5", "*/٣"]))
def test_a_schedule_that_loads_is_one_beat_can_use(field, value):
    """Every cron field config.json accepts is one Celery's crontab accepts (beat never fails on it)."""
    from celery.schedules import crontab

    from shared.errors import ConfigError

    try:
        loaded = parse_config({"schedule": {field: value}})
    except ConfigError as exc:
        assert f"'schedule.{field}'" in str(exc) and "\n" not in str(exc)
        return
    crontab(**{field: getattr(loaded.schedule, field)})  # what beat reads; raises for anything it could not use

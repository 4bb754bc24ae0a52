"""Config validation, environment overrides, migrations and the CLI's one-line errors."""
from __future__ import annotations

import json
import subprocess

import pytest

from shared.config import load_config, parse_config
from shared.db import HEAD_REVISION, current_revision, ensure_schema, make_engine
from shared.errors import ConfigError
from shared.settings import Settings
from tests.procs import BIN, ROOT

ORIGINAL = ROOT / "tests" / "data" / "original-config.json"  # the original bot's config, verbatim


def test_project_config_has_original_defaults():
    cfg = load_config(ROOT / "config.json")
    assert cfg.categories == ("cs.AI", "cs.CL", "cs.DC", "cs.LG")
    assert len(cfg.keywords) == 30 and cfg.keyword_terms()[:3] == ["LLM", "RL", "RLHF"]
    assert cfg.exclude_keywords == ("survey", "review", "tutorial")
    assert (cfg.max_papers, cfg.min_score, cfg.days_back) == (30, 2.5, 7)
    assert cfg.announce_types == ("new",)
    ai = cfg.ai_summary
    assert (ai.model, ai.api_key_env, ai.max_papers_to_summarize) == ("qwen-long", "DASHSCOPE_API_KEY", 15)
    assert ai.base_url == "https://dashscope.aliyuncs.com/compatible-mode/v1"


def test_original_config_loads_unchanged_with_warnings():
    cfg = load_config(ORIGINAL)
    warnings = cfg.startup_warnings()
    assert any("deduplication_methods" in w for w in warnings)
    assert not any("max_workers" in w for w in warnings)  # it sets embedded mode's concurrent calls now
    assert cfg.ai_summary.max_workers == 3
    assert cfg.min_score == 2.5 and cfg.keyword_terms()[-1] == "Communication"


@pytest.mark.parametrize("data, message", [
    ({"keyword": ["LLM"]}, "unknown key 'keyword' (did you mean 'keywords'?)"),
    ({"ai_summary": {"modle": "x"}}, "unknown key 'ai_summary.modle' (did you mean 'ai_summary.model'?)"),
    ({"keywords": [{"term": "x", "wieght": 2}]}, "unknown key 'keywords.wieght' (did you mean 'keywords.weight'?)"),
    ({"max_papers": "many"}, "'max_papers': Input should be a valid integer"),
    ({"categories": ["cs LG"]}, "'categories': 'cs LG' is not an arXiv category"),
    ({"category_weights": {"cs DC": 2}}, "'category_weights.cs DC': 'cs DC' is not an arXiv category or archive"),
    ({"profiles": {"ana": {"category_weights": {"CS": 2}}}},
     "'profiles.ana.category_weights.CS': 'CS' is not an arXiv category or archive"),
    ({"announce_types": ["newest"]}, "'announce_types'"),
    ({"schedule": {"timezone": "Mars/Olympus"}}, "unknown time zone 'Mars/Olympus'"),
    ({"ai_summary": {"api_key_env": "sk-abc123"}}, "must be the NAME of an environment variable"),
    ([1, 2], "the top level must be a JSON object"),
])
def test_bad_config_one_clear_line(data, message):
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    text = str(err.value)
    assert message in text and "\n" not in text


def test_short_lease_is_warned_about():
    cfg = parse_config({"ai_summary": {"lease_seconds": 10, "timeout": 60}})
    assert any("lease_seconds (10) should be at least 15" in w for w in cfg.startup_warnings())
    assert not parse_config({}).startup_warnings()


def test_mixed_keyword_entries():
    cfg = parse_config({"keywords": ["LLM", {"term": "mixture of experts", "weight": 2, "aliases": ["MoE"]}]})
    specs = cfg.keyword_specs()
    assert specs[0].term == "LLM" and specs[0].weight == 1.0
    assert specs[1].aliases == ("MoE",) and specs[1].weight == 2


def test_environment_overrides_and_secret_not_in_repr():
    cfg = parse_config({})
    env = {"DATABASE_URL": "postgresql+psycopg://u@h/db", "LLM_MODEL": "m2", "DASHSCOPE_API_KEY": "sk-secret-1",
           "OUTPUT_DIR": "/tmp/o", "ARXIV_RSS_URL": "http://127.0.0.1:1/rss/"}
    s = Settings.from_env(cfg, ROOT / "config.json", env)
    assert s.database_url.endswith("/db") and s.llm_model == "m2" and s.llm_api_key == "sk-secret-1"
    assert s.arxiv_rss_url == "http://127.0.0.1:1/rss" and s.llm_key_env == "DASHSCOPE_API_KEY"
    assert "sk-secret-1" not in repr(s)
    s2 = Settings.from_env(cfg, ROOT / "config.json", {**env, "LLM_API_KEY": "sk-2"})
    assert s2.llm_api_key == "sk-2" and s2.llm_key_env == "LLM_API_KEY"
    with pytest.raises(ConfigError, match="ARXIV_RSS_URL"):
        Settings.from_env(cfg, ROOT / "config.json", {"ARXIV_RSS_URL": "ftp://x"})


def test_migrations_reach_head_on_both_databases(db_url):
    from alembic.script import ScriptDirectory

    from shared.db import alembic_config

    engine = make_engine(db_url)
    assert current_revision(engine) is None
    ensure_schema(engine)
    assert current_revision(engine) == HEAD_REVISION
    assert ScriptDirectory.from_config(alembic_config(engine)).get_current_head() == HEAD_REVISION
    ensure_schema(engine)  # idempotent
    engine.dispose()


def run_cli(tmp_path, *args, env=None):
    import os

    full = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite", "OUTPUT_DIR": str(tmp_path / "out"),
            **(env or {})}
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=full, cwd=tmp_path, timeout=60)


def test_cli_bad_config_exit_2_one_line(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"categories": ["cs.LG"], "max_paper": 3}))
    res = run_cli(tmp_path, "run", "--config", str(bad))
    assert res.returncode == 2
    assert res.stderr.strip() == f"arxiv-bot: error: {bad}: unknown key 'max_paper' (did you mean 'max_papers'?)"
    assert not (tmp_path / "out").exists() and not (tmp_path / "db.sqlite").exists()  # nothing started
    broken = tmp_path / "broken.json"
    broken.write_text('{"categories": ["cs.LG"],}')
    res = run_cli(tmp_path, "status", env={"ARXIV_BOT_CONFIG": str(broken)})
    assert res.returncode == 2 and "invalid JSON at line 1" in res.stderr and "Traceback" not in res.stderr


def test_cli_unreachable_database_and_broker(tmp_path):
    env = {"ARXIV_BOT_CONFIG": str(ROOT / "config.json"),
           "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none"}
    res = run_cli(tmp_path, "status", env=env)
    assert res.returncode == 1 and res.stderr.startswith("arxiv-bot: error: database unreachable")
    assert len(res.stderr.strip().splitlines()) == 1
    res = run_cli(tmp_path, "trigger", env={"ARXIV_BOT_CONFIG": str(ROOT / "config.json")})
    assert res.returncode == 1 and "BROKER_URL is not set" in res.stderr
    res = run_cli(tmp_path, "trigger", env={"ARXIV_BOT_CONFIG": str(ROOT / "config.json"),
                                            "BROKER_URL": "redis://127.0.0.1:1/0"})
    assert res.returncode == 1 and "broker unreachable" in res.stderr and "Traceback" not in res.stderr


def test_run_stays_light(tmp_path):
    """`arxiv-bot run` must not import the heavy stacks it does not use."""
    code = ("import sys, arxiv_bot.cli, arxiv_bot.embedded, arxiv_bot.services; t = arxiv_bot.services.handler_table(); "
            "[t[task] for task in t]; "
            "print(sorted(m for m in ('celery', 'flask', 'alembic', 'gunicorn', 'openai', 'sklearn', 'nh3') "
            "if m in sys.modules))")
    out = subprocess.run([str(BIN.parent / "python"), "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr


def test_handlers_load_with_their_first_task():
    """Embedded mode imports a service's handlers when one of its tasks first runs: a pass with
    AI off and no channels never loads the summarizer or the deliverer. Every task resolves to
    its service's handler, and each service consumes the queue QUEUE_SERVICE names."""
    code = ("import sys; from arxiv_bot.services import handler_table; t = handler_table(); "
            "loaded = lambda: sorted(m.split('.')[1] for m in sys.modules if m.startswith('services.') "
            "and m.endswith('.handlers')); "
            "t['fetcher.fetch_pass']; t['scorer.score_profiles']; t['publisher.publish_profiles']; print(loaded()); "
            "t['deliverer.deliver']; t['summarizer.summarize_paper']; print(loaded()); "
            "print(sorted(t) == sorted(h.task for h in t.values()))")
    out = subprocess.run([str(BIN.parent / "python"), "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split("\n")[:3] == ["['fetcher', 'publisher', 'scorer']",
                                          "['deliverer', 'fetcher', 'publisher', 'scorer', 'summarizer']",
                                          "True"], out.stderr
    from arxiv_bot.services import QUEUE_SERVICE, SERVICES, queue

    assert sorted(queue(s) for s in SERVICES) == sorted(QUEUE_SERVICE)


# --- the conventions users expect (issue 11) ------------------------------------------------

def test_version_and_python_dash_m(tmp_path):
    res = run_cli(tmp_path, "--version")
    assert res.returncode == 0 and res.stdout.strip().startswith("arxiv-bot ") and res.stdout.split()[1][0].isdigit()
    mod = subprocess.run([str(BIN.parent / "python"), "-m", "arxiv_bot", "--version"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert mod.returncode == 0 and mod.stdout == res.stdout


def test_every_command_and_option_has_help():
    from arxiv_bot.cli import build_parser

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, __import__("argparse")._SubParsersAction):
                for name, sub in action.choices.items():
                    assert sub.description, f"{path} {name}: no description"
                    yield from walk(sub, f"{path} {name}")
            elif action.help != "==SUPPRESS==":
                yield path, action

    actions = list(walk(build_parser(), "arxiv-bot"))
    assert len(actions) > 20
    for path, action in actions:
        assert action.help, f"{path} {action.option_strings or action.dest}: no help"
    res = subprocess.run([str(BIN), "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert "(default: 8000)" in res.stdout and "(default: 127.0.0.1)" in res.stdout


def test_options_before_or_after_the_command(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"categories": ["cs.LG"], "max_paper": 3}))
    for args in (("--config", str(cfg), "config", "check"), ("config", "check", "--config", str(cfg))):
        res = run_cli(tmp_path, *args)
        assert res.returncode == 2 and "unknown key 'max_paper'" in res.stderr, args


def test_unknown_log_level_is_an_error_and_v_q_override_it(tmp_path):
    env = {"ARXIV_BOT_CONFIG": str(ROOT / "config.json"), "LOG_LEVEL": "LOUD"}
    res = run_cli(tmp_path, "config", "check", env=env)
    assert res.returncode == 2 and res.stderr.strip() == \
        "arxiv-bot: error: LOG_LEVEL: 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    assert run_cli(tmp_path, "-v", "config", "check", env=env).returncode == 0
    quiet = run_cli(tmp_path, "config", "check", "-q", env={**env, "ARXIV_BOT_CONFIG": str(ORIGINAL)})
    assert quiet.returncode == 0 and "warning" not in quiet.stderr  # -q drops the start-up warnings
    loud = run_cli(tmp_path, "config", "check", env={**env, "LOG_LEVEL": "info", "ARXIV_BOT_CONFIG": str(ORIGINAL)})
    assert loud.returncode == 0 and "deduplication_methods" in loud.stderr


def test_openai_variables_are_honoured_when_llm_ones_are_unset():
    cfg = load_config(ROOT / "config.json")
    only_openai = Settings.from_env(cfg, ROOT / "config.json", env={"OPENAI_API_KEY": "sk-test-openai"})
    assert only_openai.llm_api_key == "sk-test-openai" and only_openai.llm_key_env == "OPENAI_API_KEY"
    # Never to the config's default provider (DashScope): an OpenAI key goes to OpenAI.
    assert only_openai.llm_base_url == "https://api.openai.com/v1"
    with_base = Settings.from_env(cfg, ROOT / "config.json",
                                  env={"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert with_base.llm_base_url == "http://127.0.0.1:9/v1"
    both = Settings.from_env(cfg, ROOT / "config.json", env={"OPENAI_API_KEY": "a", "LLM_API_KEY": "b",
                                                              "LLM_BASE_URL": "http://127.0.0.1:8/v1"})
    assert (both.llm_api_key, both.llm_key_env, both.llm_base_url) == ("b", "LLM_API_KEY", "http://127.0.0.1:8/v1")
    configured = Settings.from_env(cfg, ROOT / "config.json", env={"OPENAI_API_KEY": "a", "DASHSCOPE_API_KEY": "d"})
    assert configured.llm_api_key == "d" and configured.llm_base_url == cfg.ai_summary.base_url
    none = Settings.from_env(cfg, ROOT / "config.json", env={})
    assert none.llm_api_key is None and none.llm_key_env == "DASHSCOPE_API_KEY"


def test_dotenv_is_read_and_the_real_environment_wins(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"categories": ["cs.LG"], "max_paper": 1}))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"categories": ["cs.LG"]}))
    (tmp_path / ".env").write_text(f"ARXIV_BOT_CONFIG={good}\nLOG_LEVEL=NOPE\n")
    import os

    base = {k: v for k, v in os.environ.items() if k not in ("ARXIV_BOT_CONFIG", "LOG_LEVEL")}
    res = subprocess.run([str(BIN), "config", "check"], capture_output=True, text=True, env=base, cwd=tmp_path,
                         timeout=60)
    assert res.returncode == 2 and "LOG_LEVEL: 'NOPE'" in res.stderr  # .env was read
    res = subprocess.run([str(BIN), "config", "check"], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                         env={**base, "LOG_LEVEL": "WARNING"})
    assert res.returncode == 0 and str(good) in res.stdout  # .env's config; the real LOG_LEVEL won


def test_config_schema_validates_the_shipped_configs(tmp_path):
    import jsonschema

    res = run_cli(tmp_path, "config", "schema")
    assert res.returncode == 0
    schema = json.loads(res.stdout)
    for path in (ROOT / "config.json", ROOT / "demo" / "config.json", ORIGINAL):
        jsonschema.validate(json.loads(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"categories": ["cs.LG"], "max_paper": 3}, schema)
    with_schema = {"$schema": "https://example.org/arxiv-bot.schema.json", "categories": ["cs.LG"]}
    jsonschema.validate(with_schema, schema)
    assert parse_config(with_schema).categories == ("cs.LG",)


def test_schema_check_at_head_is_one_query(tmp_path):
    from sqlalchemy import event

    engine = make_engine(f"sqlite:///{tmp_path}/one.sqlite")
    ensure_schema(engine)
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    ensure_schema(engine)
    assert statements == ["SELECT version_num FROM alembic_version"]
    engine.dispose()


# Imported at exit by a real `arxiv-bot run` (same entry point as the console script).
LIGHT_RUN = """
import atexit, os, sys
atexit.register(lambda: open(os.environ["MODULES_OUT"], "w").write("\\n".join(sorted(sys.modules))))
from arxiv_bot.cli import main
sys.exit(main(["run"]))
"""
NOT_ON_A_DAILY_PASS = ("alembic", "celery", "flask", "werkzeug", "gunicorn", "waitress", "openai", "sklearn",
                       "numpy", "pypdf", "rich", "sqlalchemy.dialects.postgresql", "psycopg")


def test_daily_pass_imports_only_what_it_uses(tmp_path):
    """A daily `arxiv-bot run` (AI off, interests off, SQLite, schema current) loads neither the
    migration tool nor the web, queue, LLM, ML or PDF stacks; the first run (empty database)
    does load Alembic, to migrate."""
    from tests.standins.arxiv import ArxivStandin

    cfg = json.loads((ROOT / "config.json").read_text())
    cfg.update(days_back=0, fetch={"min_interval_seconds": 0})
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    loaded = []
    with ArxivStandin() as arxiv:
        for n in (1, 2):
            out = tmp_path / f"modules-{n}.txt"
            env = {**__import__("os").environ, "ARXIV_BOT_CONFIG": str(tmp_path / "config.json"),
                   "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite", "OUTPUT_DIR": str(tmp_path / "out"),
                   "ARXIV_RSS_URL": arxiv.rss_url, "ARXIV_API_URL": arxiv.api_url, "LLM_API_KEY": "",
                   "DASHSCOPE_API_KEY": "", "BROKER_URL": "", "MODULES_OUT": str(out)}
            res = subprocess.run([str(BIN.parent / "python"), "-c", LIGHT_RUN], capture_output=True, text=True,
                                 env=env, cwd=tmp_path, timeout=120)
            assert res.returncode == 0 and "published 2024-11-28" in res.stdout, res.stderr
            loaded.append(set(out.read_text().split()))
    heavy = [{m for m in mods if m.startswith(NOT_ON_A_DAILY_PASS)} for mods in loaded]
    assert "alembic" in heavy[0]  # the first run migrates
    assert heavy[1] == set(), sorted(heavy[1])
    assert {"lxml.etree", "sqlalchemy.orm", "jinja2"} <= loaded[1]  # what the pass does use

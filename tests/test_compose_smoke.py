"""Compose smoke test without Docker: docker-compose.yml's own commands and environments, run as
local processes against the real Redis and PostgreSQL and the arXiv/LLM stand-ins.

The file is parsed (YAML anchors and merge keys), interpolated the way `docker compose` does
(${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$) from a test .env mapping, and each
service of our image gets: the .env mapping (env_file), then its `environment:` on top. What only
a container has is mapped to this machine, and nothing else is changed:
- host names `postgres`/`redis` -> 127.0.0.1: DATABASE_URL becomes a throw-away database (the
  compose user/password do not exist on the local trust-auth server, so host, credentials and
  database are replaced; the driver is kept), BROKER_URL the test Redis database;
- container paths under /app (WORKDIR) -> a temporary folder: /app/config.json is the repo's
  config.json with test pacing, /app/output the shared `output` volume;
- the web service's port 8000 -> a free local port.
Then migrate must exit 0, the long-running services start (summarizer twice: `--scale 2`), a pass
is triggered exactly as beat triggers it (its scheduled task, by name, over the broker), and the
outputs, /healthz and /feed.xml through the web process are checked.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.request

import feedparser
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.config import load_config
from shared.models import PASS_TERMINAL
from shared.settings import Settings
from tests.procs import BIN, ROOT, Worker, write_config
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin
from tests.test_e2e import LLM_KEY, chat_calls, check_outputs

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read docker-compose.yml")

VAR = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\})")
# Start order of the long-running services: depends_on puts migrate first, the rest after it.
LONG_RUNNING = ("fetcher", "scorer", "summarizer", "summarizer", "publisher", "beat", "web")


class MissingVariable(Exception):
    pass


def interpolate(value, env: dict[str, str]):
    """Compose interpolation of every string in a parsed compose file (dicts/lists recursed)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        present = name in env and (env[name] != "" or not (op or "").startswith(":"))
        if op in (":-", "-"):
            return env[name] if present else interpolate(arg, env)
        if op in (":?", "?"):
            if not present:
                raise MissingVariable(f"required variable {name} is missing a value: {arg}")
            return env[name]
        return env.get(name, "")

    return VAR.sub(one, value)


def load_compose(env: dict[str, str]) -> dict:
    return interpolate(yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8")), env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_interpolation_follows_compose_rules():
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET:-a${SET}b} $${SET}", env) == "x d  d axb ${SET}"
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD is not set - copy .env.example"):
        load_compose({})


def container_env(service: dict, dotenv: dict[str, str], local: dict[str, str]) -> dict[str, str]:
    """The service's environment as the container sees it, mapped onto this machine."""
    env = {**dotenv, **{k: str(v) for k, v in service.get("environment", {}).items()}}
    db = make_url(env["DATABASE_URL"])
    assert db.host == "postgres" and db.port == 5432
    test_db = make_url(local["DATABASE_URL"])
    assert db.drivername == test_db.drivername  # the driver the image uses is the one tested here
    env["DATABASE_URL"] = db.set(username=test_db.username, password=test_db.password, host=test_db.host,
                                 port=test_db.port, database=test_db.database).render_as_string(hide_password=False)
    assert env["BROKER_URL"].startswith("redis://redis:6379/")
    env["BROKER_URL"] = local["BROKER_URL"]
    for key, value in env.items():
        if value == "/app" or value.startswith("/app/"):
            env[key] = local["APP"] + value[len("/app"):]
    # A container has no host environment: only what the image's ENV gives (Dockerfile).
    return {**env, "PATH": os.environ["PATH"], "HOME": local["APP"], "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1"}


def start(name: str, command: list[str], env: dict[str, str], cwd, logs) -> Worker:
    assert command[0] == "arxiv-bot"  # the console script the Dockerfile installs
    log = logs / f"{name}-{len(list(logs.iterdir()))}.log"
    proc = subprocess.Popen([str(BIN), *command[1:]], env=env, cwd=cwd, start_new_session=True,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    return Worker(name, proc, log)


def wait_for_log(proc: Worker, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = proc.output()
        if text in out:
            return out
        assert proc.proc.poll() is None, f"{proc.service} exited {proc.proc.returncode}:\n{out[-3000:]}"
        time.sleep(0.2)
    raise AssertionError(f"{proc.service}: no {text!r} after {timeout}s:\n{proc.output()[-3000:]}")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def status_json(env: dict[str, str], cwd) -> dict:
    # What `docker compose exec web arxiv-bot status --json` prints.
    res = subprocess.run([str(BIN), "status", "--json"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_compose_services_run_the_system(tmp_path, pg_url, redis_url):
    app_dir, logs = tmp_path / "app", tmp_path / "logs"
    app_dir.mkdir()
    logs.mkdir()
    write_config(app_dir, ai_summary={"requests_per_minute": 1200, "tokens_per_minute": 10_000_000})
    procs: list[Worker] = []
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY) as llm:
        dotenv = {"POSTGRES_PASSWORD": "0123456789abcdef", "LLM_API_KEY": LLM_KEY, "LLM_BASE_URL": llm.base_url,
                  "ARXIV_RSS_URL": arxiv.rss_url, "ARXIV_API_URL": arxiv.api_url, "DASHSCOPE_API_KEY": "",
                  "LOG_LEVEL": "INFO", "SUMMARIZER_CONCURRENCY": "2"}
        compose = load_compose(dotenv)
        services = compose["services"]
        local = {"DATABASE_URL": pg_url, "BROKER_URL": redis_url, "APP": str(app_dir)}
        envs = {name: container_env(services[name], dotenv, local) for name in (*LONG_RUNNING, "migrate")}
        # publisher writes and web reads the same named volume: one mapped folder.
        mounts = {name: [v for v in services[name].get("volumes", []) if v.startswith("output:")]
                  for name in ("publisher", "web")}
        assert mounts == {"publisher": ["output:/app/output"], "web": ["output:/app/output:ro"]}
        output = app_dir / "output"
        assert envs["publisher"]["OUTPUT_DIR"] == envs["web"]["OUTPUT_DIR"] == str(output)
        # flower is the third-party mher/flower image with no arxiv-bot command: not started here.
        assert services["flower"]["image"].startswith("mher/flower")

        migrate = start("migrate", services["migrate"]["command"], envs["migrate"], app_dir, logs)
        assert migrate.proc.wait(timeout=60) == 0, migrate.output()
        assert "at revision" in migrate.output()

        port = free_port()
        web_cmd = list(services["web"]["command"])
        web_cmd[web_cmd.index("--port") + 1] = str(port)
        try:
            for name in LONG_RUNNING:
                procs.append(start(name, web_cmd if name == "web" else services[name]["command"], envs[name],
                                   app_dir, logs))
            for w in procs:
                if w.service in ("fetcher", "scorer", "summarizer", "publisher"):
                    w.wait_ready()
            summarizers = [w for w in procs if w.service == "summarizer"]
            assert all("concurrency: 2 (prefork)" in w.output() for w in summarizers)
            beat = next(w for w in procs if w.service == "beat")
            wait_for_log(beat, "beat: Starting...")
            web = next(w for w in procs if w.service == "web")
            wait_for_log(web, f"serving http://0.0.0.0:{port}/")

            # Send the pass exactly as beat does on schedule: its entry's task name, kwargs, queue.
            from shared.celery_app import beat_schedule, create_app

            config = load_config(app_dir / "config.json")
            app = create_app(Settings.from_env(config, app_dir / "config.json", env=envs["beat"]), config)
            entry = beat_schedule(config)["daily-pass"]
            app.send_task(entry["task"], kwargs=entry["kwargs"], **entry["options"])

            # Poll the database (the source of truth) for the end of the pass, then read it the
            # way an operator would, through `arxiv-bot status --json`.
            engine = create_engine(envs["web"]["DATABASE_URL"])
            deadline = time.monotonic() + 60
            with engine.connect() as conn:
                while time.monotonic() < deadline:
                    row = conn.execute(text("SELECT status FROM passes ORDER BY id DESC LIMIT 1")).first()
                    conn.rollback()
                    if row and row[0] in PASS_TERMINAL:
                        break
                    time.sleep(0.3)
            engine.dispose()
            latest = status_json(envs["web"], app_dir)["latest_pass"]
            assert latest["status"] == "published", latest
            assert latest["trigger"] == "beat" and latest["selected"] == 30

            papers = check_outputs(output)
            assert chat_calls(llm) == 15 and sum(p["summary"] is not None for p in papers) == 15

            code, body = get(f"http://127.0.0.1:{port}/healthz")
            health = json.loads(body)
            assert code == 200 and health["database"] == "ok" and health["broker"] == "ok", health
            code, body = get(f"http://127.0.0.1:{port}/feed.xml")
            feed = feedparser.parse(body)
            assert code == 200 and not feed.bozo
            assert [e.id for e in feed.entries[:30]] == [p["id"] for p in papers]
            for w in procs:
                assert LLM_KEY not in w.output(), w.service
        finally:
            for w in procs:
                w.stop()
    assert all(w.proc.poll() is not None for w in procs)

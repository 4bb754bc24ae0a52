"""Delivery end to end, per mode: a whole pass against the local arXiv and LLM stand-ins, its
digest delivered by e-mail (local SMTP server), a JSON webhook (local receiver) and git (a local
bare repository). Embedded: `arxiv-bot run`, twice the same day (the second delivers nothing).
Distributed: real workers with a deliverer over Redis, `arxiv-bot trigger --wait`."""
from __future__ import annotations

import json

import pytest

from tests.faults import wait_until
from tests.standins.smtp import SmtpStandin
from tests.standins.webhooks import WebhookReceiver
from tests.test_delivery_git import bare_repo, clone, git
from tests.test_e2e import make_stack, standins  # noqa: F401  (fixture)

TO = ["ana@example.org", "bo@example.org"]


def _stack(tmp_path, db_url, standins, smtp, hooks, remote, **kw):
    deliver = [{"type": "email", "to": TO}, {"type": "webhook", "format": "json", "url_env": "DIGEST_HOOK"},
               {"type": "git", "repo": str(remote), "branch": "main"}]
    stack = make_stack(tmp_path, db_url, standins, deliver=deliver,
                       feeds={"public_url": "https://digest.example.org"}, **kw)
    stack.env.update(SMTP_URL=smtp.url, SMTP_FROM="digest@example.org", DIGEST_HOOK=hooks.url("/hook/sekrit"))
    return stack


def _check(stack, smtp, hooks, remote, tmp_path):
    papers = json.loads((stack.output_dir / "papers.json").read_text())
    assert sorted(smtp.counts.items()) == [(a, 1) for a in TO]
    msg = smtp.messages[0][2]
    assert msg["Subject"] == "arXiv digest 2024-11-28 · default · 30 papers"
    text = msg.get_body(("plain",)).get_content()
    assert all(p["abs_url"] in text for p in papers)
    [body] = hooks.bodies("/hook/sekrit")
    assert body["papers"] == papers  # the json webhook posts the papers.json items
    work = clone(remote, tmp_path / f"check-{len(list(tmp_path.iterdir()))}")
    assert (work / "README.md").read_text() == (stack.output_dir / "README.md").read_text()
    assert git("log", "--format=%s", cwd=work).split("\n")[0] == "arXiv digest 2024-11-28 (default): 30 papers"


def test_embedded_run_delivers_once_per_day(tmp_path, sqlite_url, standins):
    remote = bare_repo(tmp_path)
    with SmtpStandin() as smtp, WebhookReceiver() as hooks:
        stack = _stack(tmp_path, sqlite_url, standins, smtp, hooks, remote)
        res = stack.cli("run")
        assert "delivered: 4 sent, 0 failed" in res.stdout, res.stdout
        assert res.stdout.strip().splitlines()[-1].startswith("published 2024-11-28")  # the count line stays last
        _check(stack, smtp, hooks, remote, tmp_path)
        commits = git("rev-list", "--count", "main", cwd=remote)
        again = stack.cli("run")  # the same announcement day again: nothing is delivered again
        assert "delivered:" not in again.stdout
        status = stack.cli("status").stdout
    assert sorted(smtp.counts.items()) == [(a, 1) for a in TO] and len(hooks.posts) == 1
    assert git("rev-list", "--count", "main", cwd=remote) == commits
    assert "0 pending, 2 sent, 0 failed" in status and "webhook json ($DIGEST_HOOK)" in status
    assert "sekrit" not in status + res.stdout + res.stderr


@pytest.mark.slow
def test_distributed_pass_is_delivered_by_the_deliverer(tmp_path, pg_url, redis_url, standins):
    remote = bare_repo(tmp_path)
    with SmtpStandin() as smtp, WebhookReceiver() as hooks:
        stack = _stack(tmp_path, pg_url, standins, smtp, hooks, remote, broker_url=redis_url)
        try:
            stack.start_all()
            deliverer = stack.start_worker("deliverer")
            stack.cli("trigger", "--wait", "--timeout", "180")

            def delivered():
                rows = json.loads(stack.cli("status", "--json").stdout)["deliveries"]
                return len(rows) == 3 and all(r["sent"] and not r["pending"] and not r["failed"] for r in rows)

            wait_until(delivered, 90, interval=1.0, what="every delivery marked sent")
            _check(stack, smtp, hooks, remote, tmp_path)
            assert "deliverer.deliver" in deliverer.output()
        finally:
            stack.stop()

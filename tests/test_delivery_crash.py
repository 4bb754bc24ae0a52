"""A deliverer SIGKILLed mid-delivery: the SMTP server holds the DATA phase of one recipient's
message, the worker dies waiting for the server's answer (so the server never accepted it).
Nothing is sent twice and nothing is lost after recovery: distributed (a real `arxiv-bot worker
deliverer` over Redis and PostgreSQL; a fresh worker plus the sweep) and embedded (`arxiv-bot
deliver` killed, then run again)."""
from __future__ import annotations

import json
import signal
import subprocess

import pytest
from sqlalchemy import select

from shared import lifecycle
from shared.models import Delivery
from tests.delivery_seed import make_runtime, paper_rows, plan, seed_pass
from tests.faults import wait_until
from tests.procs import BIN, Stack, _die_with_parent
from tests.standins.smtp import SmtpStandin

TO = ["ana@example.org", "bo@example.org", "cy@example.org"]
# A lease shorter than the timeout (a warning in production) so that the test need not wait long
# for the dead worker's lease; the long timeout keeps the client waiting in DATA until killed.
DELIVERY = {"timeout_seconds": 30, "lease_seconds": 600, "max_retries": 3}


def _config(tmp_path):
    cfg = {"categories": ["cs.LG"], "feeds": {"public_url": "https://digest.example.org"},
           "deliver": [{"type": "email", "to": TO}], "delivery": DELIVERY,
           "sweep": {"interval_seconds": 1, "stuck_after_seconds": 1}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return cfg, path


def _rows(rt):
    with rt.session() as s:
        return [tuple(r) for r in s.execute(select(Delivery.recipient, Delivery.status, Delivery.attempts)
                                            .order_by(Delivery.id))]


@pytest.mark.slow
def test_deliverer_killed_mid_data_phase(tmp_path, pg_url, redis_url):
    cfg, path = _config(tmp_path)
    with SmtpStandin(hold={"bo@example.org"}) as smtp:
        env = {"ARXIV_BOT_CONFIG": str(path), "DATABASE_URL": pg_url, "BROKER_URL": redis_url, "REDIS_URL": redis_url,
               "SMTP_URL": smtp.url, "SMTP_FROM": "bot@example.org", "OUTPUT_DIR": str(tmp_path / "out")}
        rt = make_runtime(tmp_path, pg_url, deliver=cfg["deliver"], delivery=DELIVERY, sweep=cfg["sweep"])
        plan(rt, seed_pass(rt, paper_rows(2)))  # the outbox the publisher left
        stack = Stack(tmp_path, env)
        try:
            worker = stack.start_worker("deliverer")
            stack.cli("deliver")  # enqueue the pending rows on the deliver queue
            assert smtp.holding.wait(60), worker.output()[-3000:]
            worker.kill()  # SIGKILL while the server has not answered DATA for bo@
            wait_until(lambda: smtp.dropped == 1, 30, what="the server to see the client gone")
            smtp.release()
            assert dict(smtp.counts) == {"ana@example.org": 1}
            assert [r[1] for r in _rows(rt)] == ["sent", "sending", "pending"]

            stack.start_worker("deliverer")  # a fresh worker; the sweep brings the work back
            from shared.celery_app import create_app
            from shared.dispatch import CeleryDispatcher
            from shared.runtime import Runtime
            from shared.settings import Settings

            settings = Settings.from_env(rt.config, path, env)
            celery_rt = Runtime(rt.config, settings, dispatcher=CeleryDispatcher(create_app(settings, rt.config)))

            def recovered():
                lifecycle.sweep(celery_rt)  # what beat runs every sweep.interval_seconds
                return all(r[1] == "sent" for r in _rows(rt))

            wait_until(recovered, 90, interval=1.0, what="every delivery sent after recovery")
        finally:
            stack.stop()
    assert dict(smtp.counts) == {a: 1 for a in TO}  # nothing twice, nothing lost
    assert [r[2] for r in _rows(rt)] == [1, 2, 1]


def test_embedded_deliver_killed_then_run_again(tmp_path, sqlite_url):
    cfg, path = _config(tmp_path)
    with SmtpStandin(hold={"bo@example.org"}) as smtp:
        env = {"ARXIV_BOT_CONFIG": str(path), "DATABASE_URL": sqlite_url, "BROKER_URL": "", "SMTP_URL": smtp.url,
               "SMTP_FROM": "bot@example.org", "OUTPUT_DIR": str(tmp_path / "out")}
        rt = make_runtime(tmp_path, sqlite_url, deliver=cfg["deliver"], delivery=DELIVERY)
        plan(rt, seed_pass(rt, paper_rows(2)))
        stack = Stack(tmp_path, env)
        proc = subprocess.Popen([str(BIN), "deliver"], env=stack.env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        try:
            assert smtp.holding.wait(60)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        wait_until(lambda: smtp.dropped == 1, 30, what="the server to see the client gone")
        smtp.release()
        assert [r[1] for r in _rows(rt)] == ["sent", "sending", "pending"]  # died with bo@ claimed
        # No wait for the dead process's lease: its owner is a dead pid of this host (issue 17.8).
        res = stack.cli("deliver")
        assert "2 sent, 0 failed, 0 pending" in res.stdout, res.stdout
    assert dict(smtp.counts) == {a: 1 for a in TO}
    assert [r[1:] for r in _rows(rt)] == [("sent", 1), ("sent", 2), ("sent", 1)]

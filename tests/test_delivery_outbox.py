"""The outbox's promises on SQLite and PostgreSQL: one claim wins, a lease that expired is taken
over (and the slow owner cannot mark it), the sweep re-sends stuck rows once per stuck age,
`arxiv-bot deliver --retry-failed` and `arxiv-bot status` through the real CLI, and the
migration matches the model."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import threading

from sqlalchemy import update

from shared import lifecycle, outbox
from shared.models import DELIVERY_SENDING, Delivery, utcnow
from tests.delivery_seed import DAY, make_runtime, paper_rows, plan, seed_pass, statuses
from tests.procs import BIN
from tests.standins.smtp import SmtpStandin

TO = ["ana@example.org", "bo@example.org", "cy@example.org"]


def _rows(rt):
    return plan(rt, seed_pass(rt, paper_rows(1)))[0][1]["delivery_ids"]


def test_exactly_one_of_many_claims_wins(tmp_path, db_url):
    rt = make_runtime(tmp_path, db_url, deliver=[{"type": "email", "to": TO}])
    row = _rows(rt)[0]
    won, start = [], threading.Barrier(8)

    def claim(i):
        start.wait()
        with rt.session() as s:
            if outbox.claim(s, row, f"worker-{i}", 60) is not None:
                won.append(i)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    with rt.session() as s:  # a claimed row under a live lease is nobody else's
        assert outbox.claim(s, row, "late", 60) is None
        assert not outbox.mark_sent(s, row, "late")


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_mark_it(tmp_path, db_url):
    rt = make_runtime(tmp_path, db_url, deliver=[{"type": "email", "to": TO}])
    row = _rows(rt)[0]
    with rt.session() as s:
        assert outbox.claim(s, row, "slow", 60) is not None
        s.execute(update(Delivery).where(Delivery.id == row).values(lease_expires_at=utcnow() - dt.timedelta(seconds=1)))
    with rt.session() as s:
        assert outbox.claim(s, row, "fresh", 60).attempts == 2
    with rt.session() as s:
        assert not outbox.mark_sent(s, row, "slow")
        assert outbox.mark_sent(s, row, "fresh")


def test_an_empty_digest_is_planned_for_git_only(tmp_path, db_url):
    """passes.deliver plans rows from the profile's selected count: a day with no paper is not
    mailed or posted, while git still commits the day's README (docs/ARCHITECTURE.md)."""
    from sqlalchemy import select

    rt = make_runtime(tmp_path, db_url, deliver=[{"type": "email", "to": TO},
                                                  {"type": "git", "repo": str(tmp_path / "digest.git")}])
    empty = seed_pass(rt, [])
    plan(rt, empty)
    full = seed_pass(rt, paper_rows(2), day=DAY + dt.timedelta(days=1))
    plan(rt, full)
    with rt.session() as s:
        rows = s.execute(select(Delivery.pass_id, Delivery.channel, Delivery.recipient).order_by(Delivery.id)).all()
    assert [(c, r) for p, c, r in rows if p == empty] == [("git", "README.md")]  # the recipient is the path
    assert sorted(c for p, c, _ in rows if p == full) == ["email"] * 3 + ["git"]


def test_retry_after_is_kept_in_the_row(tmp_path, sqlite_url):
    rt = make_runtime(tmp_path, sqlite_url, deliver=[{"type": "email", "to": TO}])
    row = _rows(rt)[0]
    with rt.session() as s:
        outbox.claim(s, row, "w", 60)
        outbox.release(s, row, "w", "HTTP 429", retry_after=3600)
    with rt.session() as s:
        assert outbox.claim(s, row, "w2", 60) is None  # not before the server said


def test_sweep_resends_stuck_deliveries_once_per_stuck_age(tmp_path, db_url):
    rt = make_runtime(tmp_path, db_url, deliver=[{"type": "email", "to": TO}],
                      sweep={"interval_seconds": 1, "stuck_after_seconds": 60})
    ids = _rows(rt)
    sent = []
    rt.dispatcher.send = lambda task, kwargs, countdown=None, **_: sent.append((task, kwargs))  # record only
    assert lifecycle.sweep(rt) == 0  # fresh rows: their messages are on their way
    past = utcnow() - dt.timedelta(seconds=120)
    with rt.session() as s:
        s.execute(update(Delivery).where(Delivery.id == ids[0]).values(updated_at=past))
        s.execute(update(Delivery).where(Delivery.id == ids[1]).values(
            status=DELIVERY_SENDING, lease_owner="dead", lease_expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert lifecycle.sweep(rt) == 1
    assert sent == [("deliverer.deliver", {"delivery_ids": [ids[0], ids[1]]})]
    assert [s[1] for s in statuses(rt)] == ["pending", "pending", "pending"]
    with rt.session() as s:  # the dead worker's lease is given up, and why the row is pending again
        freed = s.get(Delivery, ids[1])
        assert (freed.lease_owner, freed.lease_expires_at, freed.error) == (
            None, None, "the worker sending it stopped before the server answered")
        assert s.get(Delivery, ids[0]).error is None
    assert lifecycle.sweep(rt) == 0  # touched: not again before the stuck age


def test_sweep_leaves_live_leases_and_retry_afters_alone_and_resends_per_channel(tmp_path, db_url):
    from sqlalchemy import select

    rt = make_runtime(tmp_path, db_url, deliver=[{"type": "email", "to": TO},
                                                  {"type": "webhook", "format": "json", "url_env": "DIGEST_HOOK"}],
                      env={"DIGEST_HOOK": "http://127.0.0.1:9/hook"}, sweep={"interval_seconds": 1, "stuck_after_seconds": 60})
    _rows(rt)
    with rt.session() as s:
        rows = s.execute(select(Delivery.id, Delivery.channel_key).order_by(Delivery.id)).all()
    first, second = sorted({key for _, key in rows}, key=lambda k: [key for _, key in rows].index(k))
    lost, later, busy = [i for i, key in rows if key == first]
    (other,) = [i for i, key in rows if key == second]
    sent = []
    rt.dispatcher.send = lambda task, kwargs, countdown=None, **_: sent.append((task, kwargs))  # record only
    now = utcnow()
    with rt.session() as s:
        s.execute(update(Delivery).where(Delivery.id == later).values(not_before=now + dt.timedelta(seconds=300)))
        s.execute(update(Delivery).where(Delivery.id == busy).values(  # a live worker's lease, owner not known dead
            status=DELIVERY_SENDING, lease_owner="busy", lease_expires_at=now + dt.timedelta(seconds=60)))
        s.execute(update(Delivery).values(updated_at=now - dt.timedelta(seconds=120)))  # all untouched for long
    assert lifecycle.sweep(rt) == 2
    assert sent == [("deliverer.deliver", {"delivery_ids": [lost]}), ("deliverer.deliver", {"delivery_ids": [other]})]
    with rt.session() as s:
        assert s.get(Delivery, busy).lease_owner == "busy"


def test_freeing_a_dead_owners_delivery_leaves_rows_taken_over_or_not_asked_for(tmp_path, db_url):
    """The sweep frees what it found leased by a dead worker, by row and by owner: a row another
    worker claimed in the meantime, and the dead worker's rows not in the list, keep their lease."""
    from shared.watches import WATCHES

    rt = make_runtime(tmp_path, db_url, deliver=[{"type": "email", "to": TO}])
    ids = _rows(rt)
    expired = utcnow() - dt.timedelta(seconds=1)
    with rt.session() as s:
        s.execute(update(Delivery).where(Delivery.id.in_(ids)).values(
            status=DELIVERY_SENDING, lease_owner="dead", lease_expires_at=expired))
    watch = next(w for w in WATCHES if w.stage == "deliver")
    with rt.session() as s:
        units = {u.ref[0]: u for u in watch.find(s, None)}
        assert sorted(units) == sorted(ids) and {u.owner for u in units.values()} == {"dead"}
    with rt.session() as s:  # taken over by a live worker since the sweep looked
        assert outbox.claim(s, ids[1], "live", 60) is not None
    with rt.session() as s:
        watch.free(s, [units[ids[0]], units[ids[1]]])
    with rt.session() as s:
        rows = {i: s.get(Delivery, i) for i in ids}
        assert (rows[ids[0]].status, rows[ids[0]].lease_owner) == ("pending", None)
        assert (rows[ids[1]].status, rows[ids[1]].lease_owner) == (DELIVERY_SENDING, "live")
        assert (rows[ids[2]].status, rows[ids[2]].lease_owner) == (DELIVERY_SENDING, "dead")  # not asked for


def test_deliver_retry_failed_and_status_through_the_cli(tmp_path, sqlite_url):
    with SmtpStandin(refuse={"bo@example.org": "550 no such user"}) as smtp:
        rt = make_runtime(tmp_path, sqlite_url, deliver=[{"type": "email", "to": TO}])
        seed_pass(rt, paper_rows(2))
        cfg = tmp_path / "config.json"
        cfg.write_text(json.dumps({"categories": ["cs.LG"], "feeds": {"public_url": "https://digest.example.org"},
                                   "deliver": [{"type": "email", "to": TO}]}))
        env = {**os.environ, "ARXIV_BOT_CONFIG": str(cfg), "DATABASE_URL": sqlite_url, "SMTP_URL": smtp.url,
               "SMTP_FROM": "bot@example.org", "BROKER_URL": "", "OUTPUT_DIR": str(tmp_path / "out")}

        def cli(*args):
            return subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=120,
                                  cwd=tmp_path)

        plan(rt, 1)  # the outbox as the publisher left it; nothing sent yet
        res = cli("deliver")
        assert res.returncode == 1 and "2 sent, 1 failed, 0 pending" in res.stdout, res.stdout + res.stderr
        status = cli("status")
        assert "default" in status.stdout and "email" in status.stdout
        assert "0 pending, 2 sent, 1 failed" in status.stdout and "no such user (SMTP 550)" in status.stdout
        assert "--retry-failed" in status.stdout
        rows = json.loads(cli("status", "--json").stdout)["deliveries"]
        assert rows == [{"profile": "default", "channel": "email", "last_day": "2024-11-28", "pending": 0, "sent": 2,
                         "failed": 1, "last_error": "bo@example.org refused: no such user (SMTP 550)"}]
        assert cli("deliver").stdout.strip() == "nothing to deliver"  # a failure is not retried by itself
        smtp.refuse.clear()  # the address was fixed
        res = cli("deliver", "--retry-failed")
        assert res.returncode == 0 and "1 failed deliveries back to pending; 1 sent, 0 failed" in res.stdout
    assert sorted(smtp.counts.items()) == [(a, 1) for a in TO]


def test_migration_creates_what_the_model_describes(tmp_path, db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from shared.models import Base

    rt = make_runtime(tmp_path, db_url)
    with rt.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "deliveries" in repr(d)] == []


def test_one_sweep_resends_a_stages_work_and_the_deliveries_together(tmp_path, db_url):
    """The watches of one sweep add up: the active pass's lost score batch (or the nudge that closes
    a scoring stage nobody closed) and the stuck deliveries are all re-sent by the same sweep."""
    from shared.models import PASS_SCORING, Pass, PassProfile

    rt = make_runtime(tmp_path, db_url, deliver=[{"type": "email", "to": TO}],
                      sweep={"interval_seconds": 1, "stuck_after_seconds": 60})
    ids = _rows(rt)  # a published pass's deliveries, all pending
    sent = []
    rt.dispatcher.send = lambda task, kwargs, countdown=None, **_: sent.append((task, kwargs))  # record only
    past = utcnow() - dt.timedelta(seconds=120)
    with rt.session() as s:
        p = Pass(status=PASS_SCORING, active=1, trigger="test", day=dt.date(2024, 11, 29))
        s.add(p)
        s.flush()
        pass_id = p.id
        s.add(PassProfile(pass_id=pass_id, profile="default", scored=False, updated_at=past))
    with rt.session() as s:
        s.execute(update(Delivery).values(updated_at=past))
    assert lifecycle.sweep(rt) == 2
    assert sent == [("scorer.score_profiles", {"pass_id": pass_id, "profiles": ["default"]}),
                    ("deliverer.deliver", {"delivery_ids": ids})]

    # Every profile scored, the stage never closed: the nudge, and the deliveries again.
    sent.clear()
    with rt.session() as s:
        s.execute(update(PassProfile).where(PassProfile.pass_id == pass_id).values(scored=True, updated_at=past))
        s.execute(update(Pass).where(Pass.id == pass_id).values(updated_at=past))
        s.execute(update(Delivery).values(updated_at=past))
    assert lifecycle.sweep(rt) == 2
    assert sent == [("scorer.score_profiles", {"pass_id": pass_id, "profiles": []}),
                    ("deliverer.deliver", {"delivery_ids": ids})]

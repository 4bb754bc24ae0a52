"""shared/liveness.py in the test process, on a real Redis: what makes an owner dead (a local pid
that no longer runs, a missing key only once liveness is trustworthy), what a process says it
holds, and the heartbeat that publishes it (at once on a change, not only every BEAT seconds).
The end-to-end proofs (SIGKILLed workers) are in test_recovery.py; these pin each rule so a
changed rule fails here (make mutate: liveness)."""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import redis

from shared import liveness
from tests.faults import wait_until

HOST = socket.gethostname()


@pytest.fixture
def registry(monkeypatch):
    """A fresh REGISTRY and no heartbeat of the module's own, restored after the test."""
    monkeypatch.setattr(liveness, "REGISTRY", liveness.Registry())
    monkeypatch.setattr(liveness, "_heartbeat", None)
    yield liveness.REGISTRY
    liveness.stop()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _default_signals() -> None:
    """In the child before exec: every signal's default action. A test run started under nohup
    (or by anything that ignores SIGHUP) passes SIG_IGN on to its children, and a probe that sent
    SIGHUP instead of signal 0 would then leave the child alive and pass."""
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass


def test_local_pid_dead_only_for_a_process_of_this_host_that_no_longer_runs():
    dead = _dead_pid()
    assert liveness.local_pid_dead(f"{HOST}:{dead}")
    assert liveness.local_pid_dead(f"{HOST}:{dead}:140234")
    assert liveness.local_pid_dead(f"{HOST}:{dead}:thread-a")  # only the pid part must be a number
    assert not liveness.local_pid_dead(f"other-{HOST}:{dead}:1")  # another host: unknown, so alive
    for malformed in ("", HOST, f"{HOST}:", f"{HOST}:abc:1", f"{HOST}:-5"):
        assert not liveness.local_pid_dead(malformed)
    live = subprocess.Popen(["sleep", "30"], preexec_fn=_default_signals)
    try:
        assert not liveness.local_pid_dead(f"{HOST}:{live.pid}:1")
        with pytest.raises(subprocess.TimeoutExpired):  # asking sends no signal that could end it
            live.wait(timeout=0.5)
    finally:
        live.kill()
        live.wait()
    assert not liveness.local_pid_dead(f"{HOST}:{os.getpid()}:1")  # this process runs


def test_registry_holds_running_and_waiting_units(registry):
    now = time.time()
    registry.changed.clear()
    registry.hold(["running"])
    assert registry.changed.is_set()
    registry.hold(["running"], until=now - 5)  # still running: a due time does not replace "running"
    registry.hold(["later"], until=now + 100)
    registry.hold(["past"], until=now - 1)
    assert registry.held() == ["later", "running"]  # a unit past its due time is let go
    assert "past" not in registry.units
    registry.changed.clear()
    registry.drop(["running", "never-held"])
    assert registry.changed.is_set() and registry.held() == ["later"]


def test_hold_lease_renews_only_inside_the_block(registry):
    renewals = []
    with liveness.hold_lease(lambda: renewals.append(1)):
        assert len(registry.renewers) == 1
        liveness.Heartbeat(None).beat(sweep=False)
    liveness.Heartbeat(None).beat(sweep=False)
    assert renewals == [1] and registry.renewers == {}


def test_beat_writes_the_key_renews_and_sweeps_only_when_idle(registry, redis_url, caplog):
    r = redis.Redis.from_url(redis_url)
    r.set(liveness.SINCE, "1000.0")  # an older start of liveness is kept (NX)
    sweeps = []
    hb = liveness.Heartbeat(redis_url, idle=lambda: sweeps.append(threading.current_thread().name))
    assert hb.name == "arxiv-bot-heartbeat" and hb.daemon  # never keeps a process from exiting
    # A Redis that stops answering costs a beat 5 s, never a hung heartbeat (leases keep renewing).
    kwargs = hb.redis.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (5, 5)
    hb.beat()
    key = liveness.PREFIX + liveness.process_id()
    assert json.loads(r.get(key)) == [] and 0 < r.ttl(key) <= liveness.TTL
    assert float(r.get(liveness.SINCE)) == 1000.0
    assert len(sweeps) == 1  # idle: the default beat sweeps
    hb.beat(sweep=False)
    assert len(sweeps) == 1
    registry.hold(["score:3"])
    hb.beat()
    assert json.loads(r.get(key)) == ["score:3"] and len(sweeps) == 1  # holding work: no sweep
    registry.drop(["score:3"])
    renewed = []
    with liveness.hold_lease(lambda: renewed.append(1)):
        hb.beat()
    assert renewed == [1] and len(sweeps) == 1  # holding a lease: no sweep either
    r.delete(liveness.SINCE)
    hb.beat()
    assert r.get(liveness.SINCE) is not None and len(sweeps) == 2


def test_beat_survives_failures_and_says_which(registry, caplog):
    def broken_sweep():
        raise RuntimeError("database is restarting\nmore detail")

    def broken_renew():
        raise ConnectionError("gone")

    def silent_sweep():
        raise RuntimeError()

    hb = liveness.Heartbeat("redis://127.0.0.1:1/0", idle=broken_sweep)  # nothing listens on port 1
    caplog.set_level(logging.DEBUG, logger="shared.liveness")
    hb.beat()
    with liveness.hold_lease(broken_renew):
        hb.beat()
    liveness.Heartbeat(None, idle=silent_sweep).beat()
    lines = [r.getMessage() for r in caplog.records]
    assert "heartbeat: sweep failed: RuntimeError" in lines  # no message: its kind
    assert "heartbeat: redis unavailable: ConnectionError" in lines
    assert "heartbeat: sweep failed: database is restarting" in lines
    assert "heartbeat: could not renew a lease: ConnectionError" in lines


def test_a_change_is_published_at_once_not_at_the_next_beat(registry, redis_url, monkeypatch):
    monkeypatch.setattr(liveness, "BEAT", 600.0)  # only the change can publish within the test
    r = redis.Redis.from_url(redis_url)
    key = liveness.PREFIX + liveness.process_id()
    idle_threads = []
    hb = liveness.start(redis_url, idle=lambda: idle_threads.append(threading.current_thread().name))
    assert r.exists(key)  # written before start() returns: before the process takes any work
    assert liveness.start(redis_url) is hb and hb.is_alive()  # one heartbeat per process
    registry.hold(["summarize:1:2401.00001:en"])
    wait_until(lambda: json.loads(r.get(key) or "[]") == ["summarize:1:2401.00001:en"], 30, 0.05,
               what="the held unit published")
    registry.drop(["summarize:1:2401.00001:en"])
    wait_until(lambda: json.loads(r.get(key) or "[]") == [], 30, 0.05, what="the dropped unit published")
    assert idle_threads and "MainThread" not in idle_threads  # sweeps run on the heartbeat thread
    liveness.stop()
    hb.join(timeout=10)
    assert not hb.is_alive() and liveness._heartbeat is None


def test_after_fork_forgets_the_parents_work(registry):
    registry.hold(["fetch:1"])
    liveness.after_fork()
    assert liveness.REGISTRY is not registry and liveness.REGISTRY.held() == []
    assert liveness._heartbeat is None


def test_verdict_knows_death_only_when_it_can(redis_url):
    r = redis.Redis.from_url(redis_url)
    nobody = liveness.Verdict(None)
    assert nobody.alive == {} and nobody.trusted is False
    assert not nobody.dead(None) and not nobody.dead("") and not nobody.dead("elsewhere:12:1")
    assert nobody.dead(f"{HOST}:{_dead_pid()}:1")  # a dead local pid is known without Redis
    empty = liveness.verdict(redis_url)  # no key at all: nothing is trusted yet
    assert empty.alive == {} and not empty.trusted and not empty.dead("elsewhere:12:1")
    r.set(liveness.PREFIX + "hostA:123", json.dumps(["score:7"]))
    r.set(liveness.PREFIX + "hostB:9", json.dumps(["fetch:7", "deliver:3"]))
    for age, trusted in ((10.0, False), (15.0, False), (100.0, True)):  # trusted past TTL + BEAT (20 s)
        r.set(liveness.SINCE, repr(time.time() - age))
        v = liveness.verdict(redis_url)
        assert v.trusted is trusted, age
        assert v.alive == {"hostA:123": ["score:7"], "hostB:9": ["fetch:7", "deliver:3"]}
        assert v.held() == {"score:7", "fetch:7", "deliver:3"}
        assert not v.dead("hostA:123:77")  # its key is there
        assert v.dead("hostC:5:1") is trusted  # no key: dead only once liveness is trustworthy


def test_beats_come_every_beat_and_no_more_often(registry, monkeypatch):
    renewals = []
    monkeypatch.setattr(liveness, "BEAT", 600.0)
    with liveness.hold_lease(lambda: renewals.append(time.monotonic())):
        hb = liveness.Heartbeat(None)
        hb.start()
        time.sleep(1.0)
        hb.stop()
        hb.join(timeout=10)
    assert 1 <= len(renewals) <= 3  # one beat at start, then none for BEAT seconds (not a busy loop)
    renewals.clear()
    monkeypatch.setattr(liveness, "BEAT", 0.2)
    with liveness.hold_lease(lambda: renewals.append(time.monotonic())):
        hb = liveness.Heartbeat(None)
        hb.start()
        wait_until(lambda: len(renewals) >= 3, 30, 0.05, what="periodic beats without any change")
        hb.stop()
        hb.join(timeout=10)
    assert not hb.is_alive()


def test_start_replaces_a_heartbeat_whose_thread_died(registry, redis_url):
    hb = liveness.start(redis_url)
    hb.stop()
    hb.join(timeout=10)
    again = liveness.start(redis_url)
    assert again is not hb and again.is_alive()

"""The global LLM rate limiter: GCRA maths, Redis across OS processes, threads, penalize.

The end-to-end tests run against the stand-in in its enforced mode (120 requests/min quantised
to 2 per one-second window, 0.3 s latency, 429 beyond), like a real provider.
"""
from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter

import pytest
import redis

from services.summarizer import llm
from services.summarizer.prompt import build_messages
from services.summarizer.ratelimit import LocalRateLimiter, RedisRateLimiter, gcra, make_limiter
from shared.errors import TransientError
from tests.standins.llm import LLMStandin

KEY = "sk-ratelimit-test"
RPM = 120
RUN_SECONDS = 5.0
EPS = 1e-5  # the Redis script keeps its schedule to the microsecond


def _drive(limiter, base_url: str, warm_url: str, name: str, run_seconds: float, barrier=None) -> Counter:
    """Send requests through `limiter` for run_seconds; count the outcomes."""
    # Warm up on a separate, unlimited stand-in: a cold process's first request (the openai
    # client's lazy imports and model building) reaches the server 0.1-0.5 s after its grant,
    # which would squeeze it into the same provider second as the next grants. The limiter
    # spaces grants; it cannot control what happens between a grant and the provider.
    warm = llm.make_client(warm_url, KEY, 10)
    assert llm.complete(warm, "m", build_messages(f"{name} warm-up", "a", "en"), 0.3, 50, True).text
    client = llm.make_client(base_url, KEY, 10)
    counts: Counter = Counter()
    if barrier is not None:
        barrier.wait()
    stop = time.monotonic() + run_seconds
    i = 0
    while time.monotonic() < stop:
        messages = build_messages(f"{name} paper {i}", "abstract", "en")
        if limiter.acquire(llm.estimate_messages_tokens(messages) + 100, max_wait=2.0) > 0:
            counts["deferred"] += 1
            continue
        i += 1
        try:
            llm.complete(client, "m", messages, 0.3, 100, True)
            counts["ok"] += 1
        except TransientError as exc:
            counts["transient"] += 1
            limiter.penalize(exc.retry_after or 1.0)
    return counts


def _process_main(redis_url: str, base_url: str, warm_url: str, name: str, barrier, results) -> None:
    """One summarizer replica in its own OS process (spawned: nothing shared but Redis)."""
    limiter = RedisRateLimiter(redis.Redis.from_url(redis_url), RPM, 1_000_000, key_prefix="test-llm")
    results.put((name, dict(_drive(limiter, base_url, warm_url, name, RUN_SECONDS, barrier))))


def _check_server_log(standin: LLMStandin) -> list[int]:
    statuses = standin.statuses()
    assert statuses and set(statuses) == {200}, Counter(statuses)  # zero 429s
    per_window = Counter(int(t) for t, path, _, status in standin.requests
                         if path == "/v1/chat/completions" and status == 200)
    assert max(per_window.values()) <= 2, per_window  # never above ceil(120/60) per second
    return statuses


def test_the_standin_really_enforces_the_limit():
    """Control: without a limiter, a burst gets 429s (so zero 429s below means something)."""
    with LLMStandin(api_key=KEY, rpm_limit=RPM) as s:
        outcomes = []

        def one(i):
            try:
                llm.complete(llm.make_client(s.base_url, KEY, 10), "m",
                             build_messages(f"P{i}", "a", "en"), 0.3, 50, False)
                outcomes.append("ok")
            except TransientError as exc:
                outcomes.append(exc.retry_after)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    assert outcomes.count("ok") <= 4 and 1.0 in outcomes
    assert 429 in s.statuses()


def test_two_processes_share_the_redis_limit_without_429(redis_url):
    ctx = multiprocessing.get_context("spawn")
    with LLMStandin(api_key=KEY, rpm_limit=RPM, latency=0.3) as s, LLMStandin(api_key=KEY) as warm:
        barrier, results = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=_process_main,
                             args=(redis_url, s.base_url, warm.base_url, name, barrier, results))
                 for name in ("A", "B")]
        [p.start() for p in procs]
        barrier.wait(timeout=60)
        got = dict(results.get(timeout=60) for _ in procs)
        [p.join(timeout=30) for p in procs]
    assert [p.exitcode for p in procs] == [0, 0]
    assert got["A"].get("transient", 0) == 0 and got["B"].get("transient", 0) == 0
    assert got["A"]["ok"] >= 1 and got["B"]["ok"] >= 1
    statuses = _check_server_log(s)
    assert len(statuses) == got["A"]["ok"] + got["B"]["ok"]
    titles = {m["content"] for _, path, body, _ in s.requests if path == "/v1/chat/completions"
              for m in body["messages"] if m["role"] == "user"}
    assert any("<title>A paper 0</title>" in t for t in titles) and any("<title>B paper 0</title>" in t for t in titles)


def test_threads_share_the_local_limit_without_429():
    limiter = LocalRateLimiter(RPM, 1_000_000)
    with LLMStandin(api_key=KEY, rpm_limit=RPM, latency=0.3) as s, LLMStandin(api_key=KEY) as warm:
        results = {}
        barrier = threading.Barrier(3)
        threads = [threading.Thread(target=lambda n=n: results.__setitem__(
                       n, _drive(limiter, s.base_url, warm.base_url, n, 4.0, barrier)))
                   for n in ("T1", "T2", "T3")]
        [t.start() for t in threads]
        [t.join() for t in threads]
    assert sum(c["transient"] for c in results.values()) == 0
    statuses = _check_server_log(s)
    assert len(statuses) == sum(c["ok"] for c in results.values()) >= 3


def test_gcra_spacing_no_burst_and_token_budget():
    # requests: one at a time, T apart, never two at once
    wait, tat_r, tat_t = gcra(100.0, 0.0, 0.0, 0.5, 0.01, 5.0)
    assert (wait, tat_r) == (0.0, 100.5)
    wait2, tat_r2, tat_t2 = gcra(100.0, tat_r, tat_t, 0.5, 0.01, 5.0)
    assert wait2 == pytest.approx(0.5) and (tat_r2, tat_t2) == (tat_r, tat_t)  # refused: unchanged
    # tokens: 3 s of cost fits the 5 s burst, a second one must wait for 1 s
    wait, tat_r, tat_t = gcra(0.0, 0.0, 0.0, 0.001, 3.0, 5.0)
    assert (wait, tat_t) == (0.0, 3.0)
    assert gcra(0.0, 0.0, tat_t, 0.001, 3.0, 5.0)[0] == pytest.approx(1.0)
    # an idle schedule admits a request larger than the burst (it is never starved)
    assert gcra(50.0, 0.0, 0.0, 0.001, 60.0, 5.0)[0] == 0.0


def test_redis_token_limit_and_refusal_reserves_nothing(redis_url):
    client = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, rpm=6000, tpm=60_000, key_prefix="tok", burst_seconds=5)
    started = time.monotonic()
    assert limiter.acquire(3000, max_wait=0) == 0.0          # 3 s of token budget
    before = client.get("{tok}:tokens")
    wait = limiter.acquire(3000, max_wait=0)                 # would be 6 s ahead: wait 1 s, less time passed
    # Bounds that hold however slow the machine is: the schedule's 1 s, minus what has elapsed.
    assert 1.0 - (time.monotonic() - started) - EPS <= wait <= 1.0
    assert client.get("{tok}:tokens") == before               # not reserved
    assert limiter.acquire(10, max_wait=0.5) == 0.0           # a small one still fits
    idle = RedisRateLimiter(client, rpm=60, tpm=600, key_prefix="idle")
    assert idle.acquire(5000, max_wait=0) == 0.0              # oversize but idle: admitted
    assert client.pttl("{tok}:requests") > 0                  # keys expire when idle


def test_penalize_pauses_every_replica(redis_url):
    a = make_limiter(redis_url, 600, 1_000_000, key_prefix="pen")
    b = make_limiter(redis_url, 600, 1_000_000, key_prefix="pen")  # another "replica"
    assert isinstance(a, RedisRateLimiter) and a.acquire(1, 0) == 0.0
    started = time.monotonic()
    a.penalize(3.0)
    # The pause runs 3 s from the penalty: whatever time has passed since, the rest is owed.
    for replica in (b, a):
        wait = replica.acquire(1, max_wait=0.2)
        assert 3.0 - (time.monotonic() - started) - EPS <= wait <= 3.0
    local = make_limiter(None, 600, 1_000_000)
    assert isinstance(local, LocalRateLimiter) and local.acquire(1, 0) == 0.0
    started = time.monotonic()
    local.penalize(2.0)
    wait = local.acquire(1, max_wait=0)
    assert 2.0 - (time.monotonic() - started) <= wait <= 2.0


def test_acquire_waits_within_max_wait(redis_url):
    limiter = make_limiter(redis_url, 600, 1_000_000, key_prefix="wait")  # 0.1 s spacing
    granted = [limiter.acquire(1, max_wait=1.0) for _ in range(4)]
    assert granted == [0.0, 0.0, 0.0, 0.0]


def test_redis_down_is_transient():
    limiter = make_limiter("redis://127.0.0.1:1/0", 60, 1000)  # nothing listens on port 1
    with pytest.raises(TransientError, match=r"^rate limiter unavailable \(Redis\): ConnectionError$"):
        limiter.acquire(1, 0)


# -- tokens per minute across processes ------------------------------------------------------------
TPM, BURST, COST = 6000, 1.0, 25  # 100 tokens/s, at most 1 s ahead; requests of 25 tokens


def _tpm_process(redis_url: str, barrier, results, seconds: float) -> None:
    """One replica in its own OS process: takes COST-token requests for `seconds`, reports
    (tokens granted, loop start, loop end) on the system-wide monotonic clock."""
    limiter = RedisRateLimiter(redis.Redis.from_url(redis_url), rpm=60_000, tpm=TPM, key_prefix="tpm",
                               burst_seconds=BURST)
    barrier.wait()
    start = time.monotonic()
    granted = 0
    while time.monotonic() < start + seconds:
        if limiter.acquire(COST, max_wait=0.5) == 0.0:
            granted += COST
    results.put((granted, start, time.monotonic()))


def test_token_limit_is_shared_across_processes(redis_url):
    """Two processes share one tokens-per-minute budget: everything granted between the first
    and the last grant fits in tpm/60 tokens per second plus the burst, whatever the load (a
    per-process limit would grant each process that much)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_tpm_process, args=(redis_url, barrier, results, 3.0)) for _ in range(2)]
    [p.start() for p in procs]
    got = [results.get(timeout=120) for _ in procs]
    [p.join(timeout=30) for p in procs]
    assert [p.exitcode for p in procs] == [0, 0]
    granted = [g for g, _, _ in got]
    window = max(end for _, _, end in got) - min(start for _, start, _ in got)
    allowed = TPM / 60 * (window + BURST)
    assert all(g > 0 for g in granted), granted  # both replicas were served
    assert sum(granted) <= allowed, (granted, window, allowed)
    assert sum(granted) > allowed / 4  # and the budget was really used (not a limiter granting nothing)


def test_limiter_settings_and_edges(redis_url):
    local = LocalRateLimiter(600, 60_000, burst_seconds=2.0)
    assert local.interval == pytest.approx(0.1 * 1.03) and local.token_cost == pytest.approx(0.001)
    assert local.burst == 2.0
    for rpm, tpm in ((0, 10), (10, 0), (-1, 10)):
        with pytest.raises(ValueError, match="^rpm and tpm must be positive$"):
            LocalRateLimiter(rpm, tpm)
    assert LocalRateLimiter(1, 1).interval == pytest.approx(60 * 1.03)  # one a minute is a limit too
    assert LocalRateLimiter(0.5, 0.5).token_cost == pytest.approx(120.0)
    local.penalize(-5.0)  # a negative pause is no pause
    assert local.acquire(1, max_wait=0) == 0.0
    assert local.acquire(1, max_wait=-1.0) > 0  # refused at once, not after a negative wait
    down = make_limiter("redis://127.0.0.1:1/0", 60, 1000)
    with pytest.raises(TransientError, match=r"^rate limiter unavailable \(Redis\): ConnectionError$"):
        down.penalize(1.0)
    shared = make_limiter(redis_url, 60, 1000, key_prefix="edge")
    shared.penalize(-5.0)
    assert shared.acquire(1, max_wait=0) == 0.0


def test_gcra_edges():
    # A token schedule that ends exactly now is idle: even a request costing more than the burst
    # goes at once (else one large prompt could never be sent).
    assert gcra(10.0, 0.0, 10.0, 1.0, 7.0, 5.0) == (0.0, 11.0, 17.0)
    # Just before its end it is not idle: the request waits until it fits within the burst.
    wait, tat_r, tat_t = gcra(10.0, 0.0, 10.5, 1.0, 7.0, 5.0)
    assert wait == pytest.approx(2.5) and (tat_r, tat_t) == (0.0, 10.5)


def test_zero_token_requests_cost_no_tokens():
    # 10 s per token and no burst: a request of 0 (or a negative estimate) tokens must not push
    # the token schedule, or the next one would wait 10 s.
    limiter = LocalRateLimiter(6000, 6, burst_seconds=0.0)
    assert limiter.acquire(0, max_wait=0) == 0.0
    time.sleep(0.05)  # past the request spacing (0.01 s)
    assert limiter.acquire(-3, max_wait=0) == 0.0


def test_settings_reach_both_limiters_and_the_documented_keys(redis_url):
    for limiter in (make_limiter(None, 600, 60_000, burst_seconds=7.0, margin=0.1),
                    make_limiter(redis_url, 600, 60_000, burst_seconds=7.0, margin=0.1)):
        assert limiter.burst == 7.0 and limiter.interval == pytest.approx(0.1 * 1.1)
    r = redis.Redis.from_url(redis_url)
    assert make_limiter(redis_url, 600, 60_000).acquire(10, max_wait=0) == 0.0
    # The key names docs/DEPLOY.md gives for the shared limit (one hash slot for both keys).
    assert r.exists("{arxiv-bot:llm}:requests") and r.exists("{arxiv-bot:llm}:tokens")

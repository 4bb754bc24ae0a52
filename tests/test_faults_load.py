"""Load (issue 8 req 6): a real `arxiv-bot serve` (gunicorn) under 200 concurrent clients for 30 s
while passes are being published into the same database: every answer is a success and every
pass publishes. Outcomes only: the latencies (p50/p99) are measured by bench/bench_web_load.py."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.faults import LLM_KEY, check_invariants, make_stack
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin
from tests.test_faults_deps import free_port, start_serve

CLIENTS = 200
SECONDS = 30.0
PATHS = ["/", "/feed.xml", "/atom.xml", "/papers.json", "/feed.json", "/README.md", "/healthz",
         "/?category=cs.LG", "/feed.xml?min_score=3"]


def _client(base: str, deadline: float, out: list, errors: list, n: int) -> None:
    # One connection per request: gunicorn's gthread worker closes idle keep-alive connections
    # after 2 s, and a request racing that close gets no answer (reported to the lead; clients
    # such as browsers retry it). Each request here is a fresh connection, so any error is real.
    with httpx.Client(base_url=base, timeout=30, headers={"Connection": "close"}) as http:
        i = n
        while time.monotonic() < deadline:
            path = PATHS[i % len(PATHS)]
            i += 1
            t0 = time.monotonic()
            try:
                r = http.get(path)
                took = time.monotonic() - t0
                if r.status_code != 200 or not r.content:
                    errors.append((path, r.status_code, r.text[:200]))
                out.append(took)
            except httpx.HTTPError as exc:
                errors.append((path, type(exc).__name__, str(exc)[:200]))


@pytest.mark.slow
@pytest.mark.alone  # 200 clients on 2 cores: the rest of the suite would be its load, and it theirs
def test_web_under_200_clients_while_publishing(tmp_path, pg_url):
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY) as llm:
        stack = make_stack(tmp_path, pg_url, arxiv, llm)
        stack.cli("run")  # something to serve
        port = free_port()
        web = start_serve(stack, port)
        try:
            runs = []

            def publish_again():  # passes keep publishing (rolling feeds, publication rows) meanwhile
                while time.monotonic() < deadline - 5:
                    runs.append(stack.cli("run", check=False, timeout=120).returncode)
            deadline = time.monotonic() + SECONDS
            latencies: list[float] = []
            errors: list = []
            threads = [threading.Thread(target=_client, args=(f"http://127.0.0.1:{port}", deadline, latencies,
                                                              errors, n), daemon=True) for n in range(CLIENTS)]
            publisher = threading.Thread(target=publish_again, daemon=True)
            publisher.start()
            for t in threads:
                t.start()
            for t in threads:
                t.join(SECONDS + 60)
            publisher.join(180)
        finally:
            web.terminate()
            web.wait(timeout=20)
        check_invariants(pg_url, stack.output_dir, llm)
    assert not errors, (len(errors), errors[:5])
    assert runs and set(runs) == {0}
    assert len(latencies) > CLIENTS  # every client was answered, some more than once

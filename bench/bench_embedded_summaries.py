"""Benchmark `arxiv-bot run` (embedded mode) with summaries: concurrent provider calls.

The whole process, against the local arXiv stand-in (the recorded 1,504-item day) and the local
OpenAI-compatible stand-in. Two cases, each printed as JSON:

1. latency-bound: 15 summaries, the provider answering in 2 s, 600 requests/min allowed,
   `ai_summary.max_workers` 4 (the default) and 1 (one call at a time, as before);
   target: the whole run in at most 12 s with 4 workers.
2. rate-bound: 40 summaries, a 0.2 s provider limited to 120 requests/min (it answers 429 beyond),
   the same limit in config.json: the achieved rate of calls should be at least 0.95 of the
   allowed one, with no 429.

Input is the abstract (full texts would add arXiv's 3 s pacing per paper, which is not what this
measures). Run: .venv/bin/python bench/bench_embedded_summaries.py
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.procs import BIN, write_config  # noqa: E402
from tests.standins.arxiv import ArxivStandin  # noqa: E402
from tests.standins.llm import LLMStandin  # noqa: E402

KEY = "sk-bench-embedded"


def run_once(n: int, workers: int, latency: float, rpm: float, provider_rpm: float | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp, ArxivStandin() as arxiv, \
            LLMStandin(api_key=KEY, latency=latency, rpm_limit=provider_rpm) as llm:
        home = Path(tmp)
        cfg = write_config(home, min_score=0.5, max_papers=n,
                           ai_summary={"max_papers_to_summarize": n, "max_workers": workers, "input": "abstract",
                                       "requests_per_minute": rpm, "tokens_per_minute": 10_000_000})
        env = {"ARXIV_BOT_CONFIG": str(cfg), "DATABASE_URL": f"sqlite:///{home / 'db.sqlite'}",
               "OUTPUT_DIR": str(home / "out"), "ARXIV_RSS_URL": arxiv.rss_url, "ARXIV_API_URL": arxiv.api_url,
               "LLM_BASE_URL": llm.base_url, "LLM_API_KEY": KEY, "PATH": "/usr/bin:/bin"}
        t0 = time.perf_counter()
        res = subprocess.run([str(BIN), "run"], env=env, cwd=home, capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            raise SystemExit(f"run failed: {res.stderr[-2000:]}")
        arrivals = sorted(t for t, _ in llm.arrivals)
        statuses = [st for _, path, _, st in llm.requests if path.endswith("/chat/completions")]
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    return {"summaries": n, "max_workers": workers, "latency_s": latency, "allowed_rpm": rpm,
            "wall_s": round(wall, 2), "calls": len(arrivals), "http_429": statuses.count(429),
            "achieved_rpm": round(60 * (len(arrivals) - 1) / span, 1) if span else None}


def main() -> None:
    for workers in (4, 1):
        walls = [run_once(15, workers, 2.0, 600, None) for _ in range(3)]
        best = walls[0] | {"wall_s_median": statistics.median(w["wall_s"] for w in walls)}
        print(json.dumps(best))
    r = run_once(40, 4, 0.2, 120, 120)
    r["share_of_allowed_rate"] = round(r["achieved_rpm"] / 120, 3) if r["achieved_rpm"] else None
    print(json.dumps(r))


if __name__ == "__main__":
    main()

"""Benchmark many readers: score and select 1,000 and 10,000 realistic profiles against the
recorded 1,504-item day and a 15,000-item day (the day ten times, ids shifted).

Profiles are generated from the day itself: 2-6 categories drawn like the day's papers are
spread over them, 10-50 keywords drawn from the vocabulary of real abstracts (mid-frequency
words, some two-word phrases from titles), 0-3 followed authors, 0-3 exclusions, a few with
TF-IDF interests, English or Chinese summaries. Printed per case: profiles/s on one core, the
process's peak memory, and the provider calls the pass would make (distinct selected (paper,
language) pairs among every profile's picks to summarize).

Then the distributed case: 10,000 profiles in PROFILES_DIR, a pass in the scoring stage over the
1,504-item day in PostgreSQL, and 1 then 4 real `arxiv-bot worker scorer` processes (Redis
broker) draining the score queue: wall time, speed-up, and the scorers' peak memory.

    .venv/bin/python bench/bench_profiles.py [--profiles 1000 10000] [--skip-workers | --only-workers]

Targets: 10,000 profiles x the 1,504-item day in <= 30 s on one core; >= 3x faster with 4
scorer processes (on a machine with 4 cores: this one has 2); scorer peak memory <= 500 MB.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DAY = ROOT / "tests/data/arxiv/rss/rss2_2024-11-28_all20archives_1504items.xml"
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
STOP = set("the of and to in a is for we on with that this by are as an be from our can which at it or "
           "these has have its not their such than also been using based show both two new into more".split())


def day_items(copies: int):
    from bench_fetcher import big_day
    from services.fetcher.rss import parse_rss

    data = DAY.read_bytes()
    return parse_rss(big_day(data, copies) if copies > 1 else data).items


def generate(items, n: int, seed: int = 7) -> dict[str, dict]:
    """`n` profiles drawn from the day's own vocabulary, categories and authors."""
    rng = random.Random(seed)
    df = Counter()
    for it in items[:1504]:
        df.update({w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]{3,}", it.abstract)} - STOP)
    words = [w for w, c in df.items() if 3 <= c <= 150]
    phrases = []
    for it in items[:1504]:
        ws = [w for w in re.findall(r"[A-Za-z][A-Za-z-]{3,}", it.title) if w.lower() not in STOP]
        phrases += [f"{a} {b}" for a, b in zip(ws, ws[1:])]
    cats = [c for it in items[:1504] for c in it.categories]
    authors = [a for it in items[:1504] for a in it.authors[:1]]
    out = {}
    for k in range(n):
        kw = rng.sample(words, rng.randint(10, 45)) + rng.sample(phrases, rng.randint(0, 5))
        spec = {"categories": list(dict.fromkeys(rng.choice(cats) for _ in range(rng.randint(2, 6)))),
                "keywords": kw, "min_score": rng.choice([1.0, 1.5, 2.0]),
                "language": "zh" if rng.random() < 0.3 else "en"}
        if rng.random() < 0.3:
            spec["authors"] = rng.sample(authors, rng.randint(1, 3))
        if rng.random() < 0.5:
            spec["exclude_keywords"] = rng.sample(words, rng.randint(1, 3))
        if rng.random() < 0.05:
            spec["interests"] = {"enabled": True, "items": [rng.choice(items[:1504]).title]}
        out[f"r{k:05d}"] = spec
    return out


def one_core(copies: int, n: int) -> None:
    """Score and select `n` profiles in this process (one core): the scorer's own functions."""
    from services.scorer.dayindex import DayIndex, DayPaper
    from services.scorer.interests import build_interests
    from services.scorer.profile_interests import bonuses
    from services.scorer.profile_scorer import score_profile
    from services.scorer.selection import select_profile
    from shared.arxiv import effective_type
    from shared.config import parse_config
    from shared.profiles import load

    items = day_items(copies)
    readers = load(parse_config({"profiles": generate(items, n)}))
    union = readers.categories()
    kept = [it for it in items if set(it.categories) & set(union)]
    t0 = time.perf_counter()
    day = DayIndex.build([DayPaper(i.id, i.title, i.abstract, i.authors, i.categories,
                                   effective_type(i, union), i.version) for i in kept])
    t_index = time.perf_counter() - t0
    jobs, picks = set(), 0
    t1 = time.perf_counter()
    for p in readers.profiles:
        bonus = bonuses(day, p, build_interests(p.interests)) if p.interests.enabled else {}
        eligible = day.eligible(p.categories, p.announce_types)[0]
        sel = select_profile(day, p, score_profile(day, p, eligible), bonus, {})
        picks += len(sel.picks)
        jobs |= {(k.paper_id, p.language) for k in sel.picks if k.wants_summary}
    t_score = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = t_index + t_score
    print(json.dumps({"day": len(items), "papers_in_union": len(kept), "profiles": n, "index_s": round(t_index, 2),
                      "score_select_s": round(t_score, 2), "total_s": round(total, 2),
                      "profiles_per_s": round(n / total), "peak_mb": round(peak), "digest_entries": picks,
                      "provider_calls": len(jobs)}))


def distributed(n: int, workers_list: list[int]) -> None:
    """Real scorer workers over Redis and PostgreSQL, 1 then 4 processes, one pass each."""
    import redis
    from sqlalchemy import func, select

    from shared import names
    from shared.celery_app import create_app
    from shared.db import ensure_schema, make_engine, session_factory
    from shared.models import PASS_SCORING, Pass, PassItem, PassProfile
    from shared.settings import load as load_settings
    from tests.pg_dbs import throwaway_database
    from tests.procs import Stack, peak_mb, write_config
    from tests.redis_dbs import lock_free_db
    from tests.standins.arxiv import ArxivStandin

    db_num, lock = lock_free_db()
    redis_url = f"redis://127.0.0.1:6379/{db_num}"
    items = day_items(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-profiles-"))
    folder = tmp / "profiles"
    folder.mkdir()
    for slug, spec in generate(items, n).items():
        (folder / f"{slug}.json").write_text(json.dumps(spec))
    results = {}
    with throwaway_database(PG_ADMIN, prefix="bench_") as db_url, ArxivStandin() as arxiv:
        home = tmp / "home"
        home.mkdir()
        cfg = write_config(home)
        env = {"ARXIV_BOT_CONFIG": str(cfg), "DATABASE_URL": db_url, "OUTPUT_DIR": str(home / "out"),
               "PROFILES_DIR": str(folder), "ARXIV_RSS_URL": arxiv.rss_url, "ARXIV_API_URL": arxiv.api_url,
               "LLM_API_KEY": "", "DASHSCOPE_API_KEY": "", "BROKER_URL": "", "LOG_LEVEL": "WARNING"}
        # One real embedded pass stores the day's papers (and gives every profile a first digest).
        Stack(home, env).cli("run", "--no-summaries", timeout=3600)
        env["LOG_LEVEL"] = "INFO"  # a worker says "ready." at INFO: that is what wait_ready waits for
        engine = make_engine(db_url)
        ensure_schema(engine)
        S = session_factory(engine)
        env.update(BROKER_URL=redis_url, REDIS_URL=redis_url)
        config, settings = load_settings(cfg, {**os.environ, **env})
        app = create_app(settings, config)
        r = redis.Redis.from_url(redis_url)
        for procs in workers_list:
            r.flushdb()
            with S.begin() as s:
                first = s.scalar(select(func.min(Pass.id)))
                olds = list(s.scalars(select(PassItem).where(PassItem.pass_id == first)))
                p = Pass(status=PASS_SCORING, active=1, trigger="bench", day=s.get(Pass, first).day, fetched=len(olds))
                s.add(p)
                s.flush()
                pass_id = p.id
                s.add_all(PassItem(pass_id=pass_id, paper_id=i.paper_id, version=i.version,
                                   announce_type=i.announce_type, announced=i.announced) for i in olds)
                slugs = sorted(path.stem for path in folder.glob("*.json"))
                s.add_all(PassProfile(pass_id=pass_id, profile=slug, scored=False, candidates=0, selected=0,
                                      published=False) for slug in slugs)
            stack = Stack(home, env)
            try:
                ws = [stack.start_worker("scorer", wait=False) for _ in range(procs)]
                for w in ws:
                    w.wait_ready(180)
                t0 = time.perf_counter()
                for i in range(0, len(slugs), 200):
                    app.send_task(names.SCORE_PROFILES, kwargs={"pass_id": pass_id, "profiles": slugs[i:i + 200]},
                                  queue=names.SCORE_QUEUE, routing_key=names.SCORE_QUEUE)
                while True:
                    with S() as s:
                        if s.get(Pass, pass_id).status != PASS_SCORING:
                            break
                    time.sleep(0.2)
                wall = time.perf_counter() - t0
                peak = max(peak_mb(w.proc.pid) for w in ws)
            finally:
                stack.stop()
            with S.begin() as s:
                s.get(Pass, pass_id).status, s.get(Pass, pass_id).active = "published", None
            results[procs] = wall
            print(json.dumps({"scorer_processes": procs, "profiles": len(slugs), "wall_s": round(wall, 1),
                              "profiles_per_s": round(len(slugs) / wall), "scorer_peak_mb": round(peak)}))
        engine.dispose()
    lock.close()
    if len(results) > 1:
        a, b = min(results), max(results)
        print(json.dumps({"speedup": round(results[a] / results[b], 2), "from": a, "to": b,
                          "cores": os.cpu_count()}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument("--only-workers", action="store_true", help="only the distributed case")
    parser.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)  # internal: copies, n
    args = parser.parse_args()
    if args.one:
        one_core(*args.one)
        return
    print("simulated readers: profiles generated from the recorded day's vocabulary, not real ones")
    for copies in () if args.only_workers else (1, 10):
        for n in args.profiles:
            # A fresh process per case, so its peak memory is its own.
            subprocess.run([sys.executable, __file__, "--one", str(copies), str(n)], check=True)
    if not args.skip_workers:
        distributed(max(args.profiles), [1, 4])


if __name__ == "__main__":
    main()

"""The daily pass as a whole process: `arxiv-bot run` (embedded, SQLite, AI off) next to the
original bot's pipeline (bench/reference_original_bot.py), both against the local arXiv stand-in
serving the recorded 28 Nov 2024 day (1504 items).

Days: "4 categories" (cs.AI, cs.CL, cs.DC, cs.LG: the project's config.json) and "20 archives"
(every archive of the recorded day). arxiv-bot runs as on a normal weekday: its database already
holds the previous day (a published digest of 27 Nov, watermarks at 27 Nov: no backfill, schema
current), copied fresh for every run, so each run stores, scores and publishes the day's papers.
The reference makes one feedparser request per category, as the original did.

Each run is a whole process, started through GNU time (/usr/bin/time: that process's own peak
RSS and CPU time; wall time measured here). The two alternate (which goes first swaps every round) after one
unmeasured warm-up each; the median of --runs is printed with the ratio arxiv-bot/reference.
Targets (issue 16): 4 categories ratio <= 1.0 and arxiv-bot peak <= 80 MB; 20 archives ratio <= 0.9.
Also the FIRST run (empty database, days_back 7, arXiv's real 3 s spacing: the feed, then the
backfill's one query-API request), median of --first-runs: target <= 6 s.
--importtime prints the heaviest imports of one `arxiv-bot run` (python -X importtime).

Usage: .venv/bin/python bench/bench_daily_pass.py [--runs 5] [--importtime] [--only 4|20]
Needs GNU time (the Debian package `time`).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BIN = Path(sys.executable).parent
REFERENCE = ROOT / "bench" / "reference_original_bot.py"
FOUR = ["cs.AI", "cs.CL", "cs.DC", "cs.LG"]


TIME = shutil.which("time") or "/usr/bin/time"


def run_process(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, str, float]:
    """(seconds, peak RSS in MB, output, CPU seconds) of one whole process.

    The process is started by GNU time, a tiny parent: Linux counts the RSS a child had before
    its exec (the parent's, shared at fork) into the child's peak, so started from this Python
    process (tens of MB with the stand-in) every child would seem at least that large."""
    out, stats = cwd / "out.log", cwd / "time.txt"
    with open(out, "wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.run([TIME, "-o", str(stats), "-f", "%M %U %S", *cmd], env=env, cwd=cwd, stdout=fh,
                              stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - t0
    text = out.read_text(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{text[-2000:]}")
    kb, user, system = stats.read_text().split()[-3:]
    return seconds, int(kb) / 1024, text, float(user) + float(system)


def copy_db(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite database (its write-ahead log included)."""
    import sqlite3

    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()


def previous_day(tmp: Path) -> Path:
    """Wednesday 27 Nov: the recorded day with every id shifted (no paper in common)."""
    from tests.standins import arxiv_feeds as feeds

    path = feeds.write_shifted_day(feeds.DEFAULT_DAY, tmp / "day-2024-11-27.xml")
    path.write_text(path.read_text().replace("Thu, 28 Nov 2024", "Wed, 27 Nov 2024"))
    return path


class Scenario:
    def __init__(self, name: str, categories: list[str], tmp: Path, arxiv):
        self.name, self.categories, self.arxiv = name, categories, arxiv
        self.home = tmp / re.sub(r"\W+", "-", name)
        self.home.mkdir()
        cfg = json.loads((ROOT / "config.json").read_text())
        cfg["categories"] = categories
        cfg["ai_summary"]["enabled"] = False  # AI off, for both
        self.config = self.home / "config.json"
        self.config.write_text(json.dumps(cfg, indent=2))
        self.template = self.home / "template.db"
        self.rounds = 0

    def env(self, db: Path, out: Path) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "OPENAI_", "DASHSCOPE_"))}
        env.update(ARXIV_BOT_CONFIG=str(self.config), DATABASE_URL=f"sqlite:///{db}", OUTPUT_DIR=str(out),
                   ARXIV_RSS_URL=self.arxiv.rss_url, ARXIV_API_URL=self.arxiv.api_url, BROKER_URL="",
                   REDIS_URL="")
        env.pop("LOG_LEVEL", None)
        # A deployed bot runs with its bytecode cached; this host's PYTHONDONTWRITEBYTECODE would
        # make every run compile the project's modules again.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def prepare(self) -> None:
        """The database as the previous weekday's pass left it."""
        work = self.home / "prepare"
        work.mkdir()
        run_process([str(BIN / "arxiv-bot"), "run"], self.env(self.template, work / "output"), work)

    def bot(self, extra_args: tuple[str, ...] = ()) -> tuple[float, float, str]:
        self.rounds += 1
        work = self.home / f"bot-{self.rounds}"
        work.mkdir()
        db = work / "bot.db"
        copy_db(self.template, db)
        api_before = sum(path == "/api/query" for _, path, _ in self.arxiv.requests)
        res = run_process([*extra_args, str(BIN / "arxiv-bot"), "run"], self.env(db, work / "output"), work)
        backfilled = sum(path == "/api/query" for _, path, _ in self.arxiv.requests) > api_before
        if "published 2024-11-28" not in res[2] or backfilled:
            raise SystemExit(f"arxiv-bot did not make a plain daily pass:\n{res[2][-2000:]}")
        shutil.rmtree(work)
        return res

    def first_run(self) -> tuple[float, float, str]:
        """An empty database: schema, then the day's feed plus a days_back backfill."""
        self.rounds += 1
        work = self.home / f"first-{self.rounds}"
        work.mkdir()
        api_before = sum(path == "/api/query" for _, path, _ in self.arxiv.requests)
        res = run_process([str(BIN / "arxiv-bot"), "run"], self.env(work / "bot.db", work / "output"), work)
        self.first_api_requests = sum(path == "/api/query" for _, path, _ in self.arxiv.requests) - api_before
        if self.first_api_requests < 1:
            raise SystemExit(f"the first run did not backfill:\n{res[2][-2000:]}")
        shutil.rmtree(work)
        return res

    def reference(self) -> tuple[float, float, str]:
        self.rounds += 1
        work = self.home / f"ref-{self.rounds}"
        work.mkdir()
        res = run_process([sys.executable, str(REFERENCE), str(self.config), self.arxiv.rss_url,
                           str(work / "output")], self.env(work / "unused.db", work / "output"), work)
        readme = (work / "output" / "README.md").read_text()
        if "### 1. [" not in readme:
            raise SystemExit(f"the reference wrote no digest:\n{res[2][-2000:]}")
        shutil.rmtree(work)
        return res


def measure(sc: Scenario, runs: int) -> dict:
    sc.bot(), sc.reference()  # warm-up: page cache, the stand-in's rendered feeds
    samples = {"bot": [], "ref": []}
    for i in range(runs):
        order = ("bot", "ref") if i % 2 == 0 else ("ref", "bot")
        for who in order:
            seconds, rss, _, cpu = sc.bot() if who == "bot" else sc.reference()
            samples[who].append((seconds, rss, cpu))
    return {who: (statistics.median(s for s, _, _ in v), statistics.median(r for _, r, _ in v),
                  max(r for _, r, _ in v), statistics.median(c for _, _, c in v))
            for who, v in samples.items()}


def importtime(sc: Scenario, top: int = 15) -> None:
    """The heaviest imports (cumulative) of one `arxiv-bot run`, top-level packages only."""
    text = sc.bot((sys.executable, "-X", "importtime"))[2]
    rows = []
    for line in text.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(3)) <= 2:
            rows.append((int(m.group(2)), m.group(4)))
    total = sum(us for us, _ in rows)
    print(f"\n`arxiv-bot run` imports ({sc.name}): {total / 1e6:.2f} s in total under -X importtime; heaviest:")
    for us, name in sorted(rows, reverse=True)[:top]:
        print(f"  {us / 1000:7.1f} ms  {name}")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--importtime", action="store_true", help="also list the heaviest imports of arxiv-bot run")
    ap.add_argument("--only", choices=("4", "20"), help="measure one day only")
    ap.add_argument("--first-runs", type=int, default=3, help="first runs to time (0: none)")
    args = ap.parse_args()

    from tests.standins.arxiv import ArxivStandin
    from tests.standins.arxiv_feeds import ARCHIVES, DEFAULT_DAY

    if not Path(TIME).exists():
        raise SystemExit("GNU time is not installed (apt-get install time)")

    print(f"host load average (1/5/15 min): {' / '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-daily-"))
    try:
        with ArxivStandin(previous_day(tmp)) as arxiv:
            scenarios = [Scenario("4 categories", FOUR, tmp, arxiv),
                         Scenario("20 archives", [a for a in ARCHIVES if a != "test"], tmp, arxiv)]
            scenarios = [sc for sc, key in zip(scenarios, ("4", "20")) if args.only in (None, key)]
            for sc in scenarios:
                sc.prepare()
            arxiv.set_day(DEFAULT_DAY)
            results = [(sc, measure(sc, args.runs)) for sc in scenarios]
            first = [scenarios[0].first_run()[:2] for _ in range(args.first_runs)] if scenarios[0].categories == FOUR else []
            if args.importtime:
                importtime(scenarios[0])
        print(f"\ndaily pass, AI off, whole processes, median of {args.runs} (alternated)\n")
        print(f"{'day':<14}{'arxiv-bot':>11}{'reference':>11}{'ratio':>8}{'bot peak MB':>13}{'ref peak MB':>13}"
              f"{'CPU s bot/ref':>17}")
        for sc, r in results:
            (bt, brss, bmax, bcpu), (rt, rrss, rmax, rcpu) = r["bot"], r["ref"]
            print(f"{sc.name:<14}{bt:>10.2f}s{rt:>10.2f}s{bt / rt:>8.2f}{brss:>8.1f} ({bmax:.0f}){rrss:>8.1f} ({rmax:.0f})"
                  f"{bcpu:>9.2f}/{rcpu:.2f}")
        print("(peak: median, max in parentheses; CPU: user+sys of the process itself, less swayed by a busy host;"
              " the reference's wall time also holds the stand-in serving its request per category)")
        verdict = {"4 categories": lambda r: (f"ratio <= 1.00: {_met(r['bot'][0] / r['ref'][0] <= 1.0)}, "
                                              f"arxiv-bot peak <= 80 MB: {_met(r['bot'][2] <= 80)}"),
                   "20 archives": lambda r: f"ratio <= 0.90: {_met(r['bot'][0] / r['ref'][0] <= 0.9)}"}
        print("\ntargets: " + "; ".join(f"{sc.name} {verdict[sc.name](r)}" for sc, r in results))
        if first:
            took = statistics.median(t for t, _ in first)
            print(f"\nfirst run, 4 categories, days_back 7, 3 s arXiv spacing (median of {len(first)}): "
                  f"{took:.2f} s, peak {max(r for _, r in first):.0f} MB, feed + {scenarios[0].first_api_requests} "
                  f"query-API request(s) (target <= 6 s: {_met(took <= 6.0)})")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

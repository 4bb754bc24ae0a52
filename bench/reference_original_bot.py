"""The reference of bench/bench_daily_pass.py: a minimal re-implementation, written for this
benchmark, of the daily pipeline of the single-script bot arxiv-bot replaces (not part of
arxiv-bot, never imported by it). What it does is what that bot did with AI summaries off:

1. one request per category to the announcement RSS feed, parsed with feedparser (which does the
   HTTP itself: no timeout, retry, User-Agent or pacing);
2. for each entry: id from the link, published date, and id/announce type/abstract from the
   description line `arXiv:<id>vN Announce Type: <type> Abstract: ...` (abstract cut at the first
   newline, as that bot's pattern did); entries older than days_back dropped; duplicates dropped
   by id and title while fetching, then again by id, title and link;
3. keep type "new" with at least one keyword and no exclude keyword (case-insensitive substring);
   score = +1.0 per keyword in title+abstract, +0.5 more per keyword in the title; sort by score,
   cut to max_papers;
4. README.md rewritten from a template (statistics, numbered papers, keywords, schedule).

Like that bot's script it imports, at module top, everything its full run can use (feedparser,
requests, openai, tqdm, concurrent.futures), so every run pays for those imports even with AI off.
One deliberate difference: days_back counts back from the feed's own date, not from the clock,
so the recorded day is not thrown away as old.

Usage: python bench/reference_original_bot.py CONFIG.json RSS_BASE_URL OUTPUT_DIR
"""
from __future__ import annotations

import json
import logging
import re
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed  # noqa: F401 (imported like the original)
from datetime import datetime, timedelta
from pathlib import Path

import feedparser
from openai import OpenAI  # noqa: F401 (the original built a client from it when AI was on)
from tqdm import tqdm  # noqa: F401 (its progress bar for the AI step)

try:
    import requests  # noqa: F401 (its PDF downloads)
except ImportError:  # the test extras install it; without it the reference is a little lighter
    requests = None

logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(levelname)s - %(message)s")
log = logging.getLogger("reference")

DESCRIPTION = re.compile(r"arXiv:(\S+)\s+Announce\s+Type:\s+(\S+)\s+Abstract:\s+(.+)")

TEMPLATE = """# arXiv Papers Bot 🤖

This repository automatically fetches and displays relevant papers from arXiv based on configured criteria.

## 📊 Statistics

- **Last Updated**: {{LAST_UPDATED}}
- **Total Papers Found**: {{PAPER_COUNT}}
- **Categories Monitored**: {{CATEGORIES}}

## 📚 Recent Papers

{{PAPERS_SECTION}}

## 🔧 Configuration

This bot is configured to look for papers containing the following keywords:
- {{KEYWORDS}}

## 📅 Schedule

The bot runs daily at 05:40 UTC, Monday to Friday.

---
*Generated automatically by arXiv Bot*
"""


def fetch(config: dict, rss_base: str) -> list[dict]:
    papers, seen = [], set()
    for category in config["categories"]:
        url = f"{rss_base}/{category}"
        log.info("Fetching papers from %s", url)
        feed = feedparser.parse(url)
        if feed.bozo:
            log.warning("RSS feed for %s has issues: %s", category, feed.bozo_exception)
        dates = [datetime(*e.published_parsed[:6]) for e in feed.entries if e.get("published_parsed")]
        cutoff = (max(dates) if dates else datetime.now()) - timedelta(days=config.get("days_back", 7))
        for entry in feed.entries:
            try:
                published = datetime(*entry.published_parsed[:6])
                if published < cutoff:
                    continue
                m = DESCRIPTION.match(entry.summary)
                arxiv_id, kind, abstract = m.groups() if m else (None, None, entry.summary)
                paper = {"id": entry.link.split("/")[-1], "title": entry.title,
                         "authors": [a.name for a in entry.get("authors", [])], "type": kind,
                         "arxiv_id": arxiv_id, "summary": abstract, "category": category,
                         "published_date": published.strftime("%Y-%m-%d"), "link": entry.link, "score": 0.0}
            except Exception as exc:  # the original logged and skipped a bad entry
                log.error("Error parsing paper entry: %s", exc)
                continue
            title = paper["title"].lower().strip()
            if paper["id"] in seen or title in seen:
                continue
            seen.update((paper["id"], title))
            papers.append(paper)
    log.info("Fetched %d unique papers total", len(papers))
    return papers


def deduplicate(papers: list[dict]) -> list[dict]:
    out, ids, titles, links = [], set(), set(), set()
    for p in papers:
        pid, title, link = p["id"].strip(), p["title"].lower().strip(), p["link"].strip()
        if pid in ids or title in titles or link in links:
            continue
        ids.add(pid), titles.add(title), links.add(link)
        out.append(p)
    return out


def select(papers: list[dict], config: dict) -> list[dict]:
    keywords = [k.lower() for k in config.get("keywords", [])]
    excludes = [k.lower() for k in config.get("exclude_keywords", [])]
    chosen = []
    for p in papers:
        text = f"{p['title']} {p['summary']}".lower()
        if (p.get("type") or "").lower() != "new":
            continue
        if keywords and not any(k in text for k in keywords):
            continue
        if any(k in text for k in excludes):
            continue
        title = p["title"].lower()
        p["score"] = sum(1.0 for k in keywords if k in text) + sum(0.5 for k in keywords if k in title)
        chosen.append(p)
    chosen.sort(key=lambda p: p["score"], reverse=True)
    return chosen[: config.get("max_papers", 50)]


def render(papers: list[dict], config: dict) -> str:
    sections = []
    for i, p in enumerate(papers, 1):
        authors = ", ".join(p["authors"]) or "Unknown"
        more = "..." if len(p["summary"]) > 300 else ""
        sections.append(f"### {i}. [{p['title']}]({p['link']})\n\n"
                        f"**Authors**: {authors}  \n**Category**: {p['category']}  \n"
                        f"**Published**: {p['published_date']}  \n**Score**: {p['score']:.1f}  \n"
                        f"**Type**: {p['type']}  \n**ArXiv ID**: {p['arxiv_id']}  \n\n"
                        f"#### Abstract\n{p['summary'][:300]}{more}\n\n---")
    text = TEMPLATE.replace("{{PAPERS_SECTION}}", "\n\n".join(sections))
    text = text.replace("{{LAST_UPDATED}}", datetime.now().strftime("%Y-%m-%d %H:%M:%S UTC"))
    text = text.replace("{{PAPER_COUNT}}", str(len(papers)))
    text = text.replace("{{CATEGORIES}}", ", ".join(config.get("categories", [])))
    return text.replace("{{KEYWORDS}}", ", ".join(config.get("keywords", [])))


def main() -> None:
    config_path, rss_base, out_dir = sys.argv[1:4]
    config = json.loads(Path(config_path).read_text())
    papers = select(deduplicate(fetch(config, rss_base.rstrip("/"))), config)
    if papers:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "README.md").write_text(render(papers, config), encoding="utf-8")
    log.info("Updated README.md with %d papers", len(papers))


if __name__ == "__main__":
    main()

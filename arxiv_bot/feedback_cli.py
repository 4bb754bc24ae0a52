"""`arxiv-bot feedback add|export|import`: a profile's ratings from the command line.

- add SLUG ARXIV_ID up|down: one rating (the last one wins).
- export SLUG: the profile's ratings as JSON lines {"id", "rating"}, by id, on stdout.
- import SLUG FILE: JSON lines, CSL-JSON or BibTeX (Zotero's exports: entries with an arXiv
  id count as "up") or a plain list of ids (arxiv_bot/feedback_formats.py); "-" reads stdin.

Papers not in the database yet are looked up through arXiv's query API (the fetcher's client:
paced like every arXiv request, by Redis across processes when REDIS_URL is set) and stored with
the ratings in ONE transaction. Bad input (a malformed file, an id arXiv does not know, an
unknown profile) stops with one line and imports nothing. The ratings count from the next pass.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from shared import feedback
from shared.db import ensure_schema
from shared.errors import PermanentError, TransientError, UserError
from shared.runtime import Runtime

SHOWN_MISSING = 10


def _runtime(config, settings, slug: str) -> Runtime:
    rt = Runtime(config, settings)
    readers = rt.readers()
    if readers.get(slug) is None:
        raise UserError(f"no profile named {slug!r} (profiles: {', '.join(readers.slugs)})")
    ensure_schema(rt.engine)
    return rt


def _missing(rt, ids: list[str]) -> list[str]:
    from sqlalchemy import select

    from shared.models import Paper

    known: set[str] = set()
    with rt.session() as s:
        for i in range(0, len(ids), 500):
            known |= set(s.scalars(select(Paper.id).where(Paper.id.in_(ids[i:i + 500]))))
    return [pid for pid in ids if pid not in known]


def _fetch(rt, ids: list[str]) -> list:
    """The papers `ids` from arXiv's query API; UserError naming those it does not know."""
    from services.fetcher.handlers import arxiv_client

    if not ids:
        return []
    try:
        with arxiv_client(rt) as client:
            items = client.fetch_ids(ids)
    except (PermanentError, TransientError) as exc:
        raise UserError(f"cannot look up {len(ids)} papers on arXiv: {exc}; nothing recorded") from None
    found = {it.id for it in items}
    unknown = [pid for pid in ids if pid not in found]
    if unknown:
        more = f" and {len(unknown) - SHOWN_MISSING} more" if len(unknown) > SHOWN_MISSING else ""
        raise UserError(f"arXiv does not know {', '.join(unknown[:SHOWN_MISSING])}{more}; nothing recorded")
    return [it for it in items if it.id in set(ids)]


def store(rt, slug: str, ratings: dict[str, str], source: str) -> tuple[int, int]:
    """Fetch the papers the database lacks, then store them and the ratings in one transaction.
    Returns (papers fetched, ratings changed)."""
    from services.fetcher.ingest import upsert_papers

    items = _fetch(rt, _missing(rt, list(ratings)))
    with rt.session() as s:
        if items:
            upsert_papers(s, items)
        changed = feedback.record(s, slug, list(ratings.items()), source)
    return len(items), changed


def add(config, settings, slug: str, raw_id: str, rating: str) -> int:
    from shared.arxiv import find_id

    pid = find_id(raw_id)
    if pid is None:
        raise UserError(f"{raw_id!r} is not an arXiv id (such as 2411.17700 or arXiv:2411.17700v2)", exit_code=2)
    rt = _runtime(config, settings, slug)
    fetched, changed = store(rt, slug, {pid: rating}, "cli")
    note = " (fetched from arXiv)" if fetched else ""
    state = "recorded" if changed else "unchanged"
    print(f"profile {slug}: {pid} rated {rating}{note}, {state}; it counts from the next pass")
    return 0


def export(config, settings, slug: str) -> int:
    rt = _runtime(config, settings, slug)
    with rt.session() as s:
        rows = feedback.ratings_of(s, [slug])[slug]
    out = sys.stdout
    for pid, rating in rows:
        out.write(json.dumps({"id": pid, "rating": rating}) + "\n")
    return 0


def import_file(config, settings, slug: str, path: str) -> int:
    from .feedback_formats import parse

    rt = _runtime(config, settings, slug)
    name = "stdin" if path == "-" else path
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        text = data.decode("utf-8")
    except OSError as exc:
        raise UserError(f"{name}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{name}: not UTF-8 text") from None
    parsed = parse(text, name)
    fetched, changed = store(rt, slug, parsed.ratings, "import")
    ups = sum(1 for r in parsed.ratings.values() if r == "up")
    skipped = f"; {parsed.skipped} entries without an arXiv id skipped" if parsed.skipped else ""
    print(f"profile {slug}: imported {len(parsed.ratings)} ratings ({ups} up, {len(parsed.ratings) - ups} down) "
          f"from {name} ({parsed.format}), {changed} new or changed, {fetched} papers fetched from arXiv{skipped}")
    return 0

"""Publisher stage logic (Celery-free; tasks.py and the embedded runner call these).

publish_pass(pass_id) renders the pass's digest and the rolling feeds and writes README.md,
feed.xml, atom.xml, feed.json, papers.json, index.html, static/style.css, archive/<day>.md and
day/<day>.html into OUTPUT_DIR, each atomically. The HTML pages link only among the published
files (shared.render.links): a day is linked when its page exists, so the previous day's page is
written again too (it gains its "next" link) and older day pages stay as they were. The publication row and the pass's "published" state commit in the same
transaction after the files are in place: a crash before that leaves the pass in
"publishing" and the sweep (or a redelivery) simply writes the files again. A pass that is
not in "publishing" is left alone (idempotent).
"""
from __future__ import annotations

import logging

from shared import digest, names, passes
from shared.models import Pass, Publication, utcnow
from shared.render import feeds, html, markdown
from shared.render.links import Links
from shared.tasking import Handler

from .output import remove_stale_temporaries, write_atomic

log = logging.getLogger(__name__)


def _context(rt, papers, day, generated_at, summaries_note=None) -> dict:
    cfg = rt.config
    return digest.build_context(papers, day=day, generated_at=generated_at, categories=cfg.categories,
                                keywords=cfg.keyword_terms(), schedule=cfg.schedule.describe(),
                                model=rt.settings.llm_model, summaries_note=summaries_note)


def existing_day_pages(out_dir) -> set[str]:
    """The days whose page day/<day>.html is already among the published files."""
    folder = out_dir / "day"
    return {f.stem for f in folder.glob("*.html")} if folder.is_dir() else set()


def render_outputs(rt, s, p: Pass, now, day_pages=()) -> dict[str, bytes | str]:
    """Every published file, rendered by the same functions the web service uses. `day_pages`
    are the days whose page file exists already (existing_day_pages)."""
    cfg = rt.config
    papers = digest.load_pass_papers(s, p.id)
    ctx = _context(rt, papers, p.day, now, passes.summaries_off_reason(cfg, rt.settings, p))
    window = digest.load_window(s, cfg.feeds.window_days, cfg.feeds.max_items)
    readme = markdown.render_readme(ctx)
    days = digest.published_days(s)
    previous = next((d for d in days if d < p.day), None)
    with_pages = {str(d) for d in day_pages} | {p.day.isoformat()} | ({previous.isoformat()} if previous else set())
    known = digest.known_categories(cfg.categories, papers)

    def page(c: dict, depth: int) -> str:
        return html.render_page(c, {}, days, total=len(c["papers"]), links=Links.files(depth, with_pages),
                                known_categories=known)

    files = {
        "README.md": readme,
        "feed.xml": feeds.render_rss(window, feeds.feed_meta(cfg, "feed.xml", updated=now)),
        "atom.xml": feeds.render_atom(window, feeds.feed_meta(cfg, "atom.xml", updated=now)),
        "feed.json": feeds.render_json_feed(window, feeds.feed_meta(cfg, "feed.json", updated=now)),
        "papers.json": feeds.render_papers_json(papers),
        # Relative links among the published files: they work opened from disk or on a static host.
        "index.html": page(ctx, 0),
        f"day/{p.day.isoformat()}.html": page(ctx, 1),
        "static/style.css": html.stylesheet(),
        f"archive/{p.day.isoformat()}.md": readme,
    }
    if previous is not None:
        pub = s.get(Publication, previous)
        files[f"day/{previous.isoformat()}.html"] = page(
            _context(rt, digest.load_day(s, previous) or [], previous, pub.published_at), 1)
    return files


def publish_pass(rt, pass_id: int) -> None:
    """Write the pass's outputs and mark it published; does nothing unless it is publishing."""
    out_dir = rt.settings.output_dir
    with rt.session() as s:
        # Claim the pass row first: a second publisher (redelivery, sweep) waits here on the row
        # lock (SQLite: the write lock) and then finds the pass already published.
        if not passes.claim_publishing(s, pass_id):
            return
        now = utcnow()
        p = s.get(Pass, pass_id)
        remove_stale_temporaries(out_dir)
        # The publication row first, so the rolling window and the day list include this day.
        s.merge(Publication(day=p.day, pass_id=p.id, published_at=now, paper_count=p.selected, readme_md=""))
        s.flush()
        files = render_outputs(rt, s, p, now, existing_day_pages(out_dir))
        s.get(Publication, p.day).readme_md = files["README.md"]
        for name, data in files.items():
            write_atomic(out_dir / name, data)
        passes.published(s, pass_id)
    log.info("pass %d: published %d papers for %s to %s", pass_id, p.selected, p.day, out_dir)


HANDLERS = [
    Handler(names.PUBLISH_PASS, publish_pass, soft_time_limit=300, time_limit=330, max_retries=5),
]

"""Publisher stage logic (Celery-free; tasks.py and the embedded runner call these).

publish_pass(pass_id) renders the pass's digest and the rolling feeds and writes README.md,
feed.xml, atom.xml, feed.json, papers.json, index.html and archive/<day>.md into OUTPUT_DIR,
each atomically. The publication row and the pass's "published" state commit in the same
transaction after the files are in place: a crash before that leaves the pass in
"publishing" and the sweep (or a redelivery) simply writes the files again. A pass that is
not in "publishing" is left alone (idempotent).
"""
from __future__ import annotations

import logging

from shared import digest, names, passes
from shared.models import Pass, Publication, utcnow
from shared.render import feeds, html, markdown
from shared.tasking import Handler

from .output import remove_stale_temporaries, write_atomic

log = logging.getLogger(__name__)


def render_outputs(rt, s, p: Pass, now) -> dict[str, bytes | str]:
    """Every published file, rendered by the same functions the web service uses."""
    cfg = rt.config
    papers = digest.load_pass_papers(s, p.id)
    ctx = digest.build_context(papers, day=p.day, generated_at=now, categories=cfg.categories,
                               keywords=cfg.keyword_terms(), schedule=cfg.schedule.describe(),
                               model=rt.settings.llm_model,
                               summaries_note=passes.summaries_off_reason(cfg, rt.settings, p))
    window = digest.load_window(s, cfg.feeds.window_days, cfg.feeds.max_items)
    readme = markdown.render_readme(ctx)
    return {
        "README.md": readme,
        "feed.xml": feeds.render_rss(window, feeds.feed_meta(cfg, "feed.xml", updated=now)),
        "atom.xml": feeds.render_atom(window, feeds.feed_meta(cfg, "atom.xml", updated=now)),
        "feed.json": feeds.render_json_feed(window, feeds.feed_meta(cfg, "feed.json", updated=now)),
        "papers.json": feeds.render_papers_json(papers),
        # Relative links, so the file also works opened from disk or served as a static site.
        "index.html": html.render_page(ctx, {}, digest.published_days(s), total=len(papers), home_url="",
                                       css_url="static/style.css",
                                       known_categories=digest.known_categories(cfg.categories, papers)),
        "static/style.css": html.STYLE_CSS,
        f"archive/{p.day.isoformat()}.md": readme,
    }


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
        files = render_outputs(rt, s, p, now)
        s.get(Publication, p.day).readme_md = files["README.md"]
        for name, data in files.items():
            write_atomic(out_dir / name, data)
        passes.published(s, pass_id)
    log.info("pass %d: published %d papers for %s to %s", pass_id, p.selected, p.day, out_dir)


HANDLERS = [
    Handler(names.PUBLISH_PASS, publish_pass, soft_time_limit=300, time_limit=330, max_retries=5),
]

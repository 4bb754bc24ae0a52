"""Publisher stage logic (Celery-free; tasks.py and the embedded runner call these).

publish_profiles(pass_id, profiles) renders each profile's digest and rolling feeds and writes
README.md, feed.xml, atom.xml, feed.json, papers.json, index.html, static/style.css,
archive/<day>.md and day/<day>.html into OUTPUT_DIR/p/<slug>/ (only when profiles are
configured) and, for the default profile, into OUTPUT_DIR itself; each file atomically, and only
when its bytes changed. The HTML pages link only among the published files
(shared.render.links): a day is linked when its page exists, so the previous day's page is
written again too (it gains its "next" link) and older day pages stay as they were.
A batch claims its profiles (shared.passes.claim_publishing: row locks) in the transaction that
records their publications, so a second publisher of the same batch waits and then finds them
published; a crash before commit leaves them unpublished and the sweep (or a redelivery) writes
the files again. The same transaction writes the profile's delivery outbox (shared.passes.deliver);
the deliver messages go out after commit, to the deliverer's own queue. The batch that publishes
the last profile closes the pass and removes the outputs of profiles that are no longer
configured. Batches of one pass run in parallel on
several publisher processes.
"""
from __future__ import annotations

import logging
import shutil

from shared import digest, names, passes
from shared.feedback_links import links_for
from shared.models import Pass, PassProfile, Publication, utcnow
from shared.render import feeds, html, markdown
from shared.render.links import Links
from shared.tasking import Handler

from .output import remove_stale_temporaries, write_all_atomic

log = logging.getLogger(__name__)


def _context(rt, profile, papers, day, generated_at, summaries_note=None) -> dict:
    cfg = rt.config
    return digest.build_context(papers, day=day, generated_at=generated_at, categories=profile.categories,
                                keywords=profile.keyword_terms(), schedule=cfg.schedule.describe(),
                                model=rt.settings.llm_model, summaries_note=summaries_note)


def existing_day_pages(folder) -> set[str]:
    """The days whose page day/<day>.html is already among the published files in `folder`."""
    days = folder / "day"
    return {f.stem for f in days.glob("*.html")} if days.is_dir() else set()


def render_outputs(rt, s, p: Pass, profile, now, day_pages=(), prefix: str = "") -> dict[str, bytes | str]:
    """Every published file of `profile`, rendered by the same functions the web service uses.
    `day_pages` are the days whose page file exists already (existing_day_pages); `prefix` is the
    profile's path below the site ("/p/<slug>", or "" at the root)."""
    cfg = rt.config
    slug = profile.slug
    papers = digest.load_pass_papers(s, p.id, slug)
    ctx = _context(rt, profile, papers, p.day, now, passes.summaries_off_reason(cfg, rt.settings, p))
    window = digest.load_window(s, cfg.feeds.window_days, cfg.feeds.max_items, slug)
    readme = markdown.render_readme(ctx)
    days = digest.published_days(s, slug)
    previous = next((d for d in days if d < p.day), None)
    with_pages = {str(d) for d in day_pages} | {p.day.isoformat()} | ({previous.isoformat()} if previous else set())
    known = digest.known_categories(profile.categories, papers)
    # Feedback links only where they can work: absolute, under feeds.public_url (a file opened
    # from disk cannot post a form). Stamped `now`, the publication's time, like the web's.
    fb = links_for(s, rt.settings, cfg, profile, now) if cfg.feeds.public_url else None

    def page(c: dict, depth: int) -> str:
        return html.render_page(c, {}, days, total=len(c["papers"]), links=Links.files(depth, with_pages, fb),
                                known_categories=known)

    def meta(route: str) -> dict:
        return feeds.feed_meta(cfg, route, updated=now, profile=profile, prefix=prefix, feedback=fb)

    files = {
        "README.md": readme,
        "feed.xml": feeds.render_rss(window, meta("feed.xml")),
        "atom.xml": feeds.render_atom(window, meta("atom.xml")),
        "feed.json": feeds.render_json_feed(window, meta("feed.json")),
        "papers.json": feeds.render_papers_json(papers),
        # Relative links among the published files: they work opened from disk or on a static host.
        "index.html": page(ctx, 0),
        f"day/{p.day.isoformat()}.html": page(ctx, 1),
        "static/style.css": html.stylesheet(),
        f"archive/{p.day.isoformat()}.md": readme,
    }
    if previous is not None:
        pub = s.get(Publication, (slug, previous))
        files[f"day/{previous.isoformat()}.html"] = page(
            _context(rt, profile, digest.load_day(s, previous, slug) or [], previous, pub.published_at), 1)
    return files


def _targets(readers, slug: str) -> list[tuple[str, str]]:
    """(folder under OUTPUT_DIR, URL prefix) pairs the profile's files go to."""
    out = [(f"p/{slug}", f"/p/{slug}")] if readers.configured else []
    if slug == readers.default_slug:
        out.append(("", ""))
    return out


def publish_profiles(rt, pass_id: int, profiles: list[str]) -> None:
    """Publish the batch's unpublished profiles, then close the pass when none is left."""
    out_dir = rt.settings.output_dir
    readers = rt.readers()
    written, deliveries = 0, []
    with rt.session() as s:
        won = passes.claim_publishing(s, pass_id, profiles)
        if won:
            p, now = s.get(Pass, pass_id), utcnow()
            for slug in won:
                profile = readers.get(slug)
                if profile is not None:
                    written += _publish_one(rt, s, p, profile, readers, now)
                    deliveries += passes.deliver(s, p, profile)
                passes.profile_published(s, pass_id, slug)
            log.info("pass %d: published %d profiles for %s (%d files written)", pass_id, len(won), p.day, written)
        closed = passes.close_publishing(s, pass_id)
    rt.send_all(deliveries)
    if closed:
        remove_stale_temporaries(out_dir)  # once per pass: the folder may hold 10,000 profiles
        remove_unconfigured(out_dir, readers)
        log.info("pass %d: published", pass_id)


def _publish_one(rt, s, p: Pass, profile, readers, now) -> int:
    row = s.get(PassProfile, (p.id, profile.slug))
    # The publication row first, so the rolling window and the day list include this day.
    s.merge(Publication(profile=profile.slug, day=p.day, pass_id=p.id, published_at=now,
                        paper_count=row.selected if row else 0, readme_md=""))
    s.flush()
    written = 0
    for folder, prefix in _targets(readers, profile.slug):
        base = rt.settings.output_dir / folder if folder else rt.settings.output_dir
        files = render_outputs(rt, s, p, profile, now, existing_day_pages(base), prefix)
        s.get(Publication, (profile.slug, p.day)).readme_md = files["README.md"]
        written += write_all_atomic(base, files)  # the changed ones, fsynced together
    return written


def remove_unconfigured(out_dir, readers) -> list[str]:
    """Delete OUTPUT_DIR/p/<slug>/ of every profile that is no longer configured."""
    root = out_dir / "p"
    if not root.is_dir():
        return []
    keep = set(readers.slugs) if readers.configured else set()
    removed = []
    for folder in root.iterdir():
        if folder.is_dir() and folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    if removed:
        log.info("removed the outputs of profiles no longer configured: %s", ", ".join(sorted(removed)))
    return removed


HANDLERS = [
    Handler(names.PUBLISH_PROFILES, publish_profiles, soft_time_limit=600, time_limit=660, max_retries=5),
]

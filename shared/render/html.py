"""The HTML page a person reads (GET /, /day/D and the publisher's index.html and day pages),
rendered with Jinja2, autoescape ON, and the error pages.

Scan first, read on demand: each paper shows its title, authors, chips (score, categories,
matched terms) and the summary's TL;DR; the abstract and the summary's four sections fold open
in <details> (no JavaScript). A table of contents (folded), a compact list view, sorting by
score, category or date (query parameters, server-side), previous/next day, an archive list and
the feeds of the active filter in the header. Why summaries are missing is said once, at the top.

The only markup not escaped by Jinja is the AI summary (and its TL;DR), which has been through
markdown-it (html=False) and nh3 (sanitize.summary_html) and is wrapped in Markup explicitly.
No inline scripts, no inline styles: the stylesheet is a real file (static/style.css in this
package: served as /static/style.css, copied next to index.html by the publisher), so a strict
CSP (default-src 'none'; style-src 'self') holds. Links come from shared.render.links, which
knows whether the page is served or a file among the published ones.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from importlib import resources

from markupsafe import Markup

from .links import SORTS, VIEWS, Links
from .markdown import announcement_day, paper_note, summary_markdown
from .paper import LIKED, matched, readable, title_terms
from .sanitize import safe_url, summary_html

AUTHORS_SHOWN = 8


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """The page's stylesheet (shared/render/static/style.css, package data)."""
    return static_text("style.css")


@lru_cache(maxsize=4)
def static_text(name: str) -> str:
    """A file of shared/render/static (package data): style.css, feedback.js."""
    return resources.files("shared.render").joinpath(f"static/{name}").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _env():
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(loader=PackageLoader("shared.render", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       trim_blocks=True, lstrip_blocks=True)


def _sections_markdown(summary: dict) -> str:
    """The summary's body without its TL;DR (shown on the card itself)."""
    return summary_markdown({**summary, "tldr": None})


def _view(raw: dict, digest_note: str | None) -> dict:
    p = readable(raw)
    summary = p.get("summary")
    terms, places = matched(p)
    in_title = title_terms(p)
    authors = p.get("authors") or []
    body = summary_html(_sections_markdown(summary)) if summary else ""
    tldr = summary_html(summary.get("tldr")) if summary and summary.get("tldr") else ""
    return {**p, "abs_url": safe_url(p.get("abs_url")), "pdf_url": safe_url(p.get("pdf_url")),
            "because": because(p),
            "score": float(p.get("score") or 0.0),
            "authors_shown": authors[:AUTHORS_SHOWN], "authors_more": max(0, len(authors) - AUTHORS_SHOWN),
            "terms": [{"term": t, "in_title": t in in_title} for t in terms], "places": places,
            "tldr_html": Markup(tldr) if tldr else None,  # sanitised by nh3
            "summary_html": Markup(body) if body else None,  # sanitised by nh3
            "summary_model": (summary or {}).get("model"),
            "note": paper_note(p, digest_note)}


def because(p: dict) -> list[dict]:
    """The rated papers that explain a "liked" score ({"title", "url"}), from match_details."""
    from shared.arxiv import abs_url, find_id

    from .tex import to_text

    out = []
    for d in p.get("match_details") or []:
        if d.get("term") != LIKED:
            continue
        titles = list(d.get("titles") or [])
        for n, pid in enumerate(d.get("papers") or []):
            clean = find_id(str(pid))
            title = to_text(titles[n]) if n < len(titles) and titles[n] else f"arXiv:{pid}"
            out.append({"title": title, "url": abs_url(clean) if clean else None})
    return out


def sort_papers(papers: list[dict], sort: str) -> list[dict]:
    """The digest's order (by score: rank) or by primary category / newest published date,
    rank breaking ties. Stable, so equal keys keep the digest's order."""
    if sort == "category":
        return sorted(papers, key=lambda p: (p.get("primary_category") or "", p.get("rank") or 0))
    if sort == "date":
        by_rank = sorted(papers, key=lambda p: p.get("rank") or 0)
        return sorted(by_rank, key=lambda p: p.get("published") or "", reverse=True)
    return list(papers)


def _stamp(value) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return str(value or "")


def _neighbours(day: str, days: list[str], links: Links) -> tuple[str | None, str | None]:
    """(previous, next) published days around `day` that have a page; `days` newest first."""
    older = [d for d in days if d < day and links.has_day(d)]
    newer = [d for d in days if d > day and links.has_day(d)]
    return (older[0] if older else None), (newer[-1] if newer else None)


def _notice(ctx: dict, papers: list[dict]) -> str | None:
    """The one line said once at the top about summaries."""
    if ctx.get("summaries_note"):
        return ctx["summaries_note"]
    with_summary = sum(1 for p in papers if p.get("summary"))
    if papers and 0 < with_summary < len(papers):
        return f"AI summaries for {with_summary} of these {len(papers)} papers (the best scored)."
    return None


def render_page(ctx: dict, filters: dict | None = None, days: list | None = None, *, total: int | None = None,
                links: Links | None = None, known_categories: list[str] | None = None,
                sort: str = "score", view: str = "full") -> str:
    """The digest page for `ctx` (docs/ARCHITECTURE.md context) with `filters` already applied to
    ctx["papers"] (shown back in the form), `days` (published days, newest first) for the day
    navigation and the archive, sorted by `sort` and shown as `view` ("full" or "compact")."""
    filters = filters or {}
    links = links or Links.web()
    papers = ctx.get("papers") or []
    known = known_categories or list(ctx.get("categories") or [])
    day = ctx.get("day")
    day_str = day.isoformat() if isinstance(day, dt.date) else str(day or "")
    all_days = [d.isoformat() if isinstance(d, dt.date) else str(d) for d in days or []]
    prev_day, next_day = _neighbours(day_str, all_days, links) if day_str else (None, None)
    sort = sort if sort in SORTS else "score"
    view = view if view in VIEWS else "full"
    feed_filters = {k: v for k, v in filters.items() if k in ("category", "min_score", "q")}
    filtered = any(v is not None for v in feed_filters.values())
    return _env().get_template("page.html").render(
        title=f"arXiv digest {day_str}".strip(), day=day_str, day_long=announcement_day(day) or day_str,
        generated=_stamp(ctx.get("generated_at")), categories=ctx.get("categories") or [],
        papers=[_view(p, ctx.get("summaries_note")) for p in sort_papers(papers, sort)],
        total=len(papers) if total is None else total, filters=filters, filtered=filtered,
        active_filter=feed_filters, known_categories=known, notice=_notice(ctx, papers),
        archive=[d for d in all_days if links.has_day(d)], prev_day=prev_day, next_day=next_day,
        links=links, feeds=links.feeds(feed_filters), all_feeds=links.feeds() if filtered else None,
        sort=sort, view=view, sorts=list(SORTS), views=list(VIEWS))


def render_error(code: int, title: str, message: str, *, links: Links | None = None) -> str:
    """A complete error page (header, footer, links home and to the feeds); message escaped."""
    links = links or Links.web()
    return _env().get_template("error.html").render(code=code, title=f"{code} {title}", message=message,
                                                    links=links, feeds=links.feeds(), all_feeds=None)


def render_profiles(profiles: list[dict], *, links: Links | None = None, opml_url: str = "/profiles.opml") -> str:
    """The list of public profiles (/profiles): each with its page and feeds. `profiles` items:
    {"slug", "url" (its page, ending in /), "categories", "keywords"}."""
    links = links or Links.web()
    return _env().get_template("profiles.html").render(profiles=profiles, opml_url=opml_url, links=links,
                                                       feeds=[], all_feeds=None, title="arXiv digests")


def render_feedback(kind: str, **ctx) -> str:
    """The feedback confirmation page (kind "confirm": one POST button, `token`, `action`) or the
    page after recording ("recorded": `message`). Both name the paper (`title`, `paper_id`) and
    link `home` (the digest) when given."""
    from shared.arxiv import abs_url, find_id

    from .tex import to_text

    links = Links.web()
    paper_id = ctx.pop("paper_id")
    clean = find_id(paper_id)
    return _env().get_template("feedback.html").render(
        kind=kind, links=links, feeds=[], all_feeds=None, paper_id=paper_id,
        paper_title=to_text(ctx.pop("title")), abs_url=abs_url(clean) if clean else "#",
        title="Confirm your feedback" if kind == "confirm" else "Feedback recorded", **ctx)

"""RSS 2.0 and Atom 1.0 (feedgen) and JSON Feed 1.1 (by hand) from paper dicts.

Guarantees: the same papers and feed_meta give the same bytes (every date comes from the data:
pubDate/updated = the digest day, lastBuildDate/updated = the newest digest's time given in
feed_meta["updated"], never "now"), so HTTP ETags are stable. GUID = the arXiv id (RSS
isPermaLink=false, JSON Feed id); Atom ids are the abstract URL (atom:id must be an IRI).
Content is HTML built from escaped text and the sanitised summary, carried as escaped text (not
CDATA), so "]]>" or "<script>" in a title cannot break the XML or become markup. Titles, names
and abstracts are shown with their TeX made text (shared.render.paper.readable).

feed_meta keys: title, link (the page), self_url, id (optional: the feed's Atom id; defaults to
link), description, updated (aware datetime, optional; defaults to the newest paper's day at
00:00 UTC). The links are absolute when a base URL is known (feeds.public_url, or the request's
own in the web service) and relative to the feed file when not (the publisher's files without
feeds.public_url: "index.html" beside "feed.xml", which is right wherever the files are served).
feedback (optional, shared.feedback_links.FeedbackLinks): with feeds.public_url set, each item
carries "More like this" / "Less like this" links to the confirmation pages (docs/DESIGN.md
"Feedback"; a GET there records nothing), and the JSON Feed's extension {"feedback": {"up",
"down"}}; their tokens are stamped with the publication time, so the bytes stay stable.
"""
from __future__ import annotations

import datetime as dt
import html
import json

from .markdown import summary_markdown, summary_note
from .paper import matched_line, readable
from .sanitize import cut, plain, safe_url, summary_html

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
_XML_BAD = dict.fromkeys([c for c in range(32) if c not in (9, 10, 13)] + [0xFFFE, 0xFFFF])


def _x(text) -> str:
    """Text without the characters XML 1.0 forbids (lxml refuses them)."""
    return str(text or "").translate(_XML_BAD)


def _day_dt(day: str | None) -> dt.datetime:
    try:
        d = dt.date.fromisoformat(day or "")
    except ValueError:
        d = dt.date(1970, 1, 1)
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc)


def _updated(papers: list[dict], meta: dict) -> dt.datetime:
    if meta.get("updated"):
        return meta["updated"]
    return max((_day_dt(p.get("day")) for p in papers), default=_day_dt(None))


def _score_line(p: dict) -> str:
    terms = matched_line(p) or "none"
    return f"Score {float(p.get('score') or 0):.1f} · matched: {terms} · {', '.join(p.get('categories') or [])}"


def content_html(p: dict, feedback=None) -> str:
    """The entry body: score and matches, authors, the full abstract, the AI summary (or why not)
    and links, with "more like this" / "less like this" links when `feedback`
    (shared.feedback_links.FeedbackLinks) can make absolute ones. Built from escaped text plus the
    nh3-cleaned summary."""
    e = html.escape
    p = readable(p)
    parts = [f"<p><strong>{e(_score_line(p))}</strong></p>",
             f"<p>{e(', '.join(p.get('authors') or []))}</p>",
             f"<p>{e(plain(p.get('abstract')))}</p>"]
    summary = p.get("summary")
    if summary:
        parts.append(f"<h3>AI summary ({e(summary.get('model') or '')})</h3>")
        parts.append(summary_html(summary_markdown(summary)))
    else:
        parts.append(f"<p><em>{e(summary_note(p, None))}</em></p>")
    links = [(safe_url(p.get("abs_url")), "Abstract"), (safe_url(p.get("pdf_url")), "PDF")]
    links += [(u, t) for u, t in _feedback_links(p, feedback)]
    parts.append("<p>" + " · ".join(f'<a href="{e(u)}">{t}</a>' for u, t in links if u) + "</p>")
    return "\n".join(parts)


def _feedback_links(p: dict, feedback) -> list[tuple[str, str]]:
    """(GET URL of the confirmation page, label) per rating, or [] without a public URL."""
    if feedback is None or not p.get("id"):
        return []
    up = feedback.url(p["id"], "up")
    return [(up, "More like this"), (feedback.url(p["id"], "down"), "Less like this")] if up else []


def _generator(meta: dict, papers: list[dict], fmt: str):
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    if fmt == "rss":
        fg.load_extension("dc")  # RSS <author> must be an e-mail address: names go in dc:creator
    fg.title(_x(meta["title"]))
    fg.id(meta.get("id") or meta["link"])
    # feedgen uses the LAST link as the RSS <link>: self first, then the public page.
    fg.link(href=meta["self_url"], rel="self")
    fg.link(href=meta["link"], rel="alternate")
    fg.description(_x(meta.get("description") or meta["title"]))
    fg.subtitle(_x(meta.get("description") or meta["title"]))
    fg.author({"name": "arxiv-bot"})  # feed-level author: Atom needs one when an entry has none
    fg.generator("arxiv-bot")
    fg.language("en")
    updated = _updated(papers, meta)
    fg.updated(updated)
    fg.lastBuildDate(updated)
    # feedgen prepends entries by default; order=append keeps the newest-first order we pass.
    for raw in papers:
        p = readable(raw)
        fe = fg.add_entry(order="append")
        # feedgen keeps ONE id for both formats: the bare arXiv id as the RSS guid, an IRI for Atom.
        if fmt == "rss":
            fe.guid(p["id"], permalink=False)
        else:
            fe.id(safe_url(p.get("abs_url")) or f"urn:arxiv:{p['id']}")
            # As escaped HTML, not text: every reader then shows the same inert text.
            fe.summary(_x(html.escape(cut(p.get("abstract") or "", 300))), type="html")
        fe.title(_x(plain(p.get("title"))))
        if safe_url(p.get("abs_url")):
            fe.link(href=p["abs_url"], rel="alternate")
        day = _day_dt(p.get("day"))
        fe.published(day)
        fe.updated(day)
        names = [_x(plain(n)) for n in p.get("authors") or [] if plain(n)]
        if fmt == "rss":
            if names:
                fe.dc.dc_creator(names)
        else:
            for name in names:
                fe.author({"name": name})
        for cat in p.get("categories") or []:
            fe.category(term=_x(cat))
        body = _x(content_html(raw, meta.get("feedback")))
        fe.description(body)
        fe.content(body, type="html")
    return fg


def render_rss(papers: list[dict], feed_meta: dict) -> bytes:
    """RSS 2.0 bytes (UTF-8, with atom:link rel=self)."""
    return _generator(feed_meta, papers, "rss").rss_str(pretty=True)


def render_atom(papers: list[dict], feed_meta: dict) -> bytes:
    """Atom 1.0 bytes (UTF-8)."""
    return _generator(feed_meta, papers, "atom").atom_str(pretty=True)


def render_json_feed(papers: list[dict], feed_meta: dict) -> bytes:
    """JSON Feed 1.1 bytes. Score, rank and matched terms ride in the "_arxiv_bot" extension."""
    items = []
    feedback = feed_meta.get("feedback")
    for raw in papers:
        p = readable(raw)
        summary = p.get("summary")
        rate = [u for u, _label in _feedback_links(raw, feedback)]
        item = {
            "id": p["id"],
            "url": safe_url(p.get("abs_url")),
            "title": plain(p.get("title")),
            "content_html": content_html(raw, feedback),
            "content_text": plain(p.get("abstract")),
            "summary": (summary or {}).get("tldr") or plain(p.get("abstract"))[:300],
            "date_published": _day_dt(p.get("day")).isoformat().replace("+00:00", "Z"),
            "authors": [{"name": plain(a)} for a in p.get("authors") or []],
            "tags": list(p.get("categories") or []),
            "external_url": safe_url(p.get("pdf_url")),
            "_arxiv_bot": {"score": p.get("score"), "rank": p.get("rank"), "matched": p.get("matched") or [],
                           "match_details": p.get("match_details") or [], "version": p.get("version"),
                           "summary_status": p.get("summary_status"),
                           "summary_model": (summary or {}).get("model"),
                           **({"feedback": {"up": rate[0], "down": rate[1]}} if rate else {})},
        }
        items.append({k: v for k, v in item.items() if v is not None})
    doc = {"version": JSON_FEED_VERSION, "title": feed_meta["title"], "home_page_url": feed_meta["link"],
           "feed_url": feed_meta["self_url"], "description": feed_meta.get("description") or feed_meta["title"],
           "language": "en", "items": items}
    return json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")


def render_papers_json(papers: list[dict]) -> bytes:
    """papers.json: the paper dicts as they are (text intact; JSON escaping makes it inert)."""
    return json.dumps(papers, ensure_ascii=False, indent=1).encode("utf-8")


def feed_meta(config, route: str, filters: dict | None = None, updated: dt.datetime | None = None,
              base_url: str | None = None, profile=None, prefix: str = "", feedback=None) -> dict:
    """Channel metadata for `route` (feed.xml, atom.xml, feed.json), shared by the publisher's
    files and the web service's (filtered) responses so both carry the same bytes.

    `base_url` is where the site is served (feeds.public_url wins; the web service passes the
    request's own URL). With neither, the links are relative ("index.html", "feed.xml") and the
    feed's id a stable URN, so a published file never names a host it does not know. `profile`
    (shared.profiles.Profile) gives the categories; `prefix` ("/p/<slug>") is the profile's path
    below the site, which also tells its feed's URN apart. `feedback`
    (shared.feedback_links.FeedbackLinks) gives each item its "more/less like this" links when
    feeds.public_url is set."""
    from urllib.parse import urlencode

    filters = filters or {}
    base = (config.feeds.public_url or base_url or "").rstrip("/")
    base = base + prefix if base else base
    query = urlencode({k: v for k, v in filters.items() if v is not None})
    categories = list(profile.categories) if profile is not None else list(config.categories)
    cats = ", ".join(categories)
    title = "arXiv digest: " + cats + (f" [{filters['category']}]" if filters.get("category") else "")
    self_url = (f"{base}/{route}" if base else route) + (f"?{query}" if query else "")
    return {"title": title, "link": base + "/" if base else "index.html", "self_url": self_url,
            "id": None if base else "urn:arxiv-bot:digest:" + prefix.removeprefix("/p/") + (":" if prefix else "")
                                    + ",".join(categories),
            "description": f"Daily arXiv papers in {cats}, scored against your keywords, with AI summaries",
            "updated": updated, "feedback": feedback}

"""The HTML page a person reads (GET / and index.html), rendered with Jinja2, autoescape ON.

The only markup that is not escaped by Jinja is the AI summary, which has been through
markdown-it (html=False) and nh3 (sanitize.summary_html) and is wrapped in Markup explicitly.
No inline scripts, no inline styles: the stylesheet is a separate file (STYLE_CSS, served as
/static/style.css; the publisher writes it next to index.html), so a strict CSP
(default-src 'none'; style-src 'self') holds. The filter form is a plain GET form: it works
without JavaScript.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache

from markupsafe import Markup

from .markdown import summary_markdown, summary_note
from .sanitize import safe_url, summary_html

STYLE_CSS = """\
:root{--fg:#1d2733;--muted:#5b6b7c;--accent:#0b5cad;--bg:#fbfbfd;--line:#dde3ea}
*{box-sizing:border-box}
body{margin:0 auto;max-width:60rem;padding:1rem 1.25rem 3rem;font:16px/1.55 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
header h1{margin:.2rem 0;font-size:1.6rem}header h1 a{color:inherit;text-decoration:none}
.meta,.authors,.cats,.note,.nosummary,footer{color:var(--muted);font-size:.92rem}
.filters{display:flex;flex-wrap:wrap;gap:.6rem 1rem;align-items:end;padding:.8rem;border:1px solid var(--line);border-radius:.5rem;background:#fff}
.filters label{display:flex;flex-direction:column;font-size:.85rem;color:var(--muted)}
.filters input,.filters select,.filters button{font:inherit;padding:.3rem .5rem}
.papers{list-style:none;padding:0}
.paper{border-bottom:1px solid var(--line);padding:1rem 0}
.paper h2{font-size:1.15rem;margin:0 0 .3rem}
.rank{color:var(--muted)}
.score strong{color:#0a7a3d}
.cat{display:inline-block;padding:0 .4rem;border:1px solid var(--line);border-radius:.3rem;font-size:.8rem}
.abstract{margin:.5rem 0}
details.summary{background:#fff;border:1px solid var(--line);border-radius:.4rem;padding:.4rem .8rem}
details.summary summary{cursor:pointer;font-weight:600}
.summary-body table{border-collapse:collapse}.summary-body td,.summary-body th{border:1px solid var(--line);padding:.2rem .4rem}
.days ul{columns:3;padding-left:1.2rem}
footer{margin-top:2rem;border-top:1px solid var(--line)}
"""


@lru_cache(maxsize=1)
def _env():
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(loader=PackageLoader("shared.render", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       trim_blocks=True, lstrip_blocks=True)


def _view(p: dict, default_note: str | None) -> dict:
    summary = p.get("summary")
    body = summary_html(summary_markdown(summary)) if summary else ""
    matched = ", ".join(f"{d.get('term')} ({'/'.join(d.get('where') or [])})" for d in p.get("match_details") or []) \
        or ", ".join(p.get("matched") or [])
    return {**p, "abs_url": safe_url(p.get("abs_url")), "pdf_url": safe_url(p.get("pdf_url")),
            "score": float(p.get("score") or 0.0), "matched_text": matched,
            "summary_html": Markup(body) if body else None,  # already sanitised by nh3
            "summary_model": (summary or {}).get("model"), "no_summary": summary_note(p, default_note)}


def _stamp(value) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return str(value or "")


def render_page(ctx: dict, filters: dict | None = None, days: list | None = None, *, total: int | None = None,
                home_url: str = "/", css_url: str = "/static/style.css", form_action: str | None = None,
                known_categories: list[str] | None = None) -> str:
    """The digest page for `ctx` (docs/ARCHITECTURE.md context) with `filters` already applied to
    ctx["papers"] (shown back in the form) and `days` (dates) linked as /day/YYYY-MM-DD."""
    filters = filters or {}
    papers = ctx.get("papers") or []
    known = known_categories or list(ctx.get("categories") or [])
    feeds = [{"type": "application/rss+xml", "title": "RSS", "label": "RSS", "href": f"{home_url}feed.xml"},
             {"type": "application/atom+xml", "title": "Atom", "label": "Atom", "href": f"{home_url}atom.xml"},
             {"type": "application/feed+json", "title": "JSON Feed", "label": "JSON Feed",
              "href": f"{home_url}feed.json"}]
    return _env().get_template("page.html").render(
        title=f"arXiv digest {ctx.get('day') or ''}", day=str(ctx.get("day") or ""),
        generated=_stamp(ctx.get("generated_at")), categories=ctx.get("categories") or [],
        papers=[_view(p, ctx.get("summaries_note")) for p in papers],
        total=len(papers) if total is None else total, filters=filters,
        known_categories=known, summaries_note=ctx.get("summaries_note"),
        days=[str(d) for d in days or []], home_url=home_url, css_url=css_url,
        form_action=form_action or home_url, feeds=feeds)


def render_error(code: int, title: str, message: str, *, home_url: str = "/",
                 css_url: str = "/static/style.css") -> str:
    """A short error page (no traceback, message escaped)."""
    return _env().get_template("error.html").render(code=code, title=title, message=message, home_url=home_url,
                                                    css_url=css_url, feeds=[])

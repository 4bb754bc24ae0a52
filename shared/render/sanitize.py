"""Making untrusted text safe for each output.

Everything that comes from arXiv (titles, authors, abstracts) or from the LLM (summaries) is
untrusted. Three tools:
- `summary_html(md)`: the LLM's Markdown -> HTML with markdown-it-py (html=False, so raw HTML in
  the text is escaped, not passed through), then cleaned by nh3 (a small tag allow-list, only
  http/https links, rel="noopener noreferrer"). Used by the feeds and the HTML page.
- `md_escape(text)`: text for inline Markdown (README.md): GitHub renders inline HTML and links,
  so <, >, & become entities and Markdown punctuation gets a backslash.
- `plain(text)`: one line of plain text (control characters dropped, whitespace collapsed).
TeX in titles and abstracts ($x^2$, \\emph{..}) is kept as text: escaped, never interpreted.
"""
from __future__ import annotations

import re
from functools import lru_cache

ALLOWED_TAGS = {"p", "br", "hr", "strong", "em", "b", "i", "code", "pre", "blockquote", "ul", "ol", "li",
                "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td", "del", "sup", "sub"}
ALLOWED_ATTRS = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Markdown punctuation that can start emphasis, links, code, headings, lists, tables...
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]!|~])")
# ...and what only matters at the start of a line (heading, list, numbered list); ">" becomes &gt;.
_MD_LEADING = re.compile(r"^(\s*)((?:[#+\-=]+|\d+[.)])(?=\s|$))")


@lru_cache(maxsize=1)
def _md():
    from markdown_it import MarkdownIt

    # commonmark with html disabled: "<script>" in the text becomes "&lt;script&gt;"; tables on.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")


def clean_html(fragment: str) -> str:
    """Allow-list an HTML fragment: small tag set, http(s) links only, no attributes with script."""
    import nh3  # here, not at the top: a day without summaries has no HTML to clean (1.4 MB)

    return nh3.clean(fragment, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRS, url_schemes={"http", "https"},
                     link_rel="noopener noreferrer", strip_comments=True)


def summary_html(markdown_text: str | None) -> str:
    """Render untrusted Markdown to safe HTML. Headings are demoted to h3+ so a summary's "# Title"
    cannot outrank the page's own headings."""
    if not markdown_text:
        return ""
    text = _CONTROL.sub("", markdown_text)
    rendered = _md().render(text)
    rendered = re.sub(r"<(/?)h([12])>", lambda m: f"<{m.group(1)}h{int(m.group(2)) + 2}>", rendered)
    return clean_html(rendered)


def md_escape(text: str | None) -> str:
    """Untrusted text made inert for inline Markdown on GitHub: HTML special characters become
    entities (no tag, no closing </details>), Markdown punctuation is backslash-escaped (no link,
    image, emphasis or heading), newlines become spaces (no new block)."""
    if not text:
        return ""
    text = plain(text)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_LEADING.sub(lambda m: m.group(1) + ("\\" + m.group(2) if m.group(2)[0] in "#+-="
                                                   else m.group(2)[:-1] + "\\" + m.group(2)[-1]), text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str | None) -> str:
    """One line of plain text: control characters dropped, runs of whitespace collapsed."""
    return " ".join(_CONTROL.sub("", text or "").split())


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s), else None (no javascript:, data:, ...)."""
    if not url:
        return None
    url = url.strip()
    return url if re.match(r"^https?://[^\s<>\"']+$", url, re.I) else None


def cut(text: str, limit: int = 300) -> str:
    """Cut at a word boundary at or before `limit` characters and add "..." when cut."""
    text = plain(text)
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    if space > limit // 2:
        head = head[:space]
    return head.rstrip(" ,;:.") + "..."

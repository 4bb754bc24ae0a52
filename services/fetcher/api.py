"""Parse the arXiv query API's Atom responses (export.arxiv.org/api/query), both the current
backend and the legacy one (wrapped titles, inline namespaces, http links).

`parse_api(data)` returns an ApiPage; it raises PermanentError with arXiv's own message for an
error feed (an entry titled "Error" by "arXiv api core", or with an /api/errors# id), and for
anything secure_parse refuses (HTML, malformed XML, DTDs).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from shared.arxiv import is_category, split_id
from shared.errors import PermanentError

from .records import FeedItem, checked_doi, clean_abstract, collapse
from .rss import ARXIV_NS, ATOM_NS, _iso, secure_parse

log = logging.getLogger(__name__)

OS_NS = "http://a9.com/-/spec/opensearch/1.1/"
# arXiv categories look like 'cs.LG', 'astro-ph', 'math-ph'; MSC ('53C') and ACM ('I.2.7')
# codes also arrive as <category> and are not kept.
_A = f"{{{ATOM_NS}}}"
_X = f"{{{ARXIV_NS}}}"


@dataclass(slots=True)
class ApiPage:
    total: int
    start: int
    per_page: int
    items: list[FeedItem] = field(default_factory=list)
    entries: int = 0  # <entry> elements on the page, usable or not (what paging counts)


def date_query(terms, start, end) -> str:
    """The search_query for papers submitted in [start, end] (whole days) to any of `terms`
    (query-API category terms such as 'cs.LG' or 'cs.*'): one term is `cat:X AND ...`, several
    are OR-ed in parentheses, as the API's grammar allows."""
    terms = list(terms)
    cats = " OR ".join(f"cat:{t}" for t in terms)
    if len(terms) > 1:
        cats = f"({cats})"
    return f"{cats} AND submittedDate:[{start:%Y%m%d}0000 TO {end:%Y%m%d}2359]"


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        return default


def _check_error(entry) -> None:
    title = collapse(entry.findtext(f"{_A}title"))
    ident = entry.findtext(f"{_A}id") or ""
    author = collapse(entry.findtext(f"{_A}author/{_A}name"))
    if "/api/errors#" in ident or (title == "Error" and author == "arXiv api core"):
        message = collapse(entry.findtext(f"{_A}summary")) or ident
        raise PermanentError(f"arXiv API error: {message}")


def _entry(entry) -> FeedItem | None:
    raw_id = (entry.findtext(f"{_A}id") or "").strip()
    parsed = split_id(raw_id.split("/abs/", 1)[-1])
    if parsed is None:
        log.warning("arXiv API: skipping entry with unusable id %r", collapse(raw_id)[:120])
        return None
    arxiv_id, version = parsed
    primary_el = entry.find(f"{_X}primary_category")
    primary = primary_el.get("term") if primary_el is not None else None
    cats = [c.get("term") for c in entry.iterchildren(f"{_A}category")]
    cats = [c for c in cats if c and is_category(c)]
    if primary:
        cats = [primary] + [c for c in cats if c != primary]
    return FeedItem(
        id=arxiv_id,
        version=version or 1,
        title=collapse(entry.findtext(f"{_A}title")),
        abstract=clean_abstract(entry.findtext(f"{_A}summary") or ""),
        authors=[collapse(a.findtext(f"{_A}name")) for a in entry.iterchildren(f"{_A}author")],
        categories=cats,
        doi=checked_doi(entry.findtext(f"{_X}doi")),
        journal_ref=collapse(entry.findtext(f"{_X}journal_ref")) or None,
        comment=collapse(entry.findtext(f"{_X}comment")) or None,
        published=_iso(entry.findtext(f"{_A}published")),
        updated=_iso(entry.findtext(f"{_A}updated")),
    )


def parse_api(data: bytes) -> ApiPage:
    """One page of query results: opensearch totals plus the entries as FeedItems (primary
    category first, from arxiv:primary_category; affiliations not part of author names)."""
    root = secure_parse(data, "arXiv API response")
    if root.tag != f"{_A}feed":
        raise PermanentError("arXiv API response: not an Atom feed")
    entries = list(root.iterchildren(f"{_A}entry"))
    for entry in entries:
        _check_error(entry)
    page = ApiPage(total=_int(root.findtext(f"{{{OS_NS}}}totalResults")),
                   start=_int(root.findtext(f"{{{OS_NS}}}startIndex")),
                   per_page=_int(root.findtext(f"{{{OS_NS}}}itemsPerPage")), entries=len(entries))
    for entry in entries:
        item = _entry(entry)
        if item is not None:
            page.items.append(item)
    return page

"""Parse arXiv's announcement feeds (rss.arxiv.org/rss/<q> and the Atom flavour /atom/<q>) and
decide what an item means for the configured categories.

`parse_rss(data)` returns a FeedResult or raises PermanentError with one line: arXiv's error
channel, an HTML page, truncated/malformed XML, a document with a DTD (entity bombs), or a
document that is not a feed. One broken item is skipped with a warning; the rest still parse.
What one item may carry does not cost the day: bytes that are not UTF-8 become U+FFFD, and
control characters (which XML forbids; raw or as &#N; references, an escape character with its
terminal sequence) are removed, each with a warning. Ids, versions and categories are validated
(shared.arxiv) before they can become part of a URL or of markup: an item whose id or version
is not arXiv's is skipped, a category that is not one is dropped.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from lxml import etree

from shared.arxiv import ANNOUNCE_TYPES, is_category, split_id
from shared.errors import PermanentError

from .records import FeedItem, checked_doi, checked_license, clean_abstract, collapse, has_controls, split_authors

log = logging.getLogger(__name__)

ARXIV_NS = "http://arxiv.org/schemas/atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
ATOM_NS = "http://www.w3.org/2005/Atom"
EASTERN = ZoneInfo("America/New_York")
# "arXiv:2411.17700v1 Announce Type: new \nAbstract: ..." (note the space before the newline).
# The id is validated afterwards (shared.arxiv.split_id): it becomes part of URLs and markup.
DESC_RE = re.compile(r"^\s*arXiv:(\S+)\s+Announce Type:\s*([\w-]+)\s*\n?\s*Abstract:[ \t]*(.*)\Z", re.S)
# Far above any real day (2000 items of a few KB); a bigger body is refused, not parsed.
MAX_RESPONSE_BYTES = 200 * 1024 * 1024
# Real abstracts stay under 2,000 characters (arXiv's limit is 1,920); longer text is cut.
MAX_ABSTRACT_CHARS = 20_000
MAX_TITLE_CHARS = 1_000


@dataclass(slots=True)
class FeedResult:
    title: str
    day: dt.date | None  # the announcement day the feed carries (channel pubDate, US/Eastern)
    items: list[FeedItem] = field(default_factory=list)
    build_date: dt.datetime | None = None


def secure_parse(data: bytes, what: str = "arXiv response") -> etree._Element:
    """Parse untrusted XML without entity expansion, DTD loading or network access. Raises
    PermanentError (one line) for HTML pages, malformed/truncated XML and any document with a DTD:
    arXiv never sends one, and refusing it rules out entity bombs outright."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:512].lower()
    if not head:
        raise PermanentError(f"{what}: empty response body")
    if head.startswith(b"<!doctype html") or head.startswith(b"<html") or b"<html" in head[:200]:
        raise PermanentError(f"{what}: got an HTML page instead of XML (arXiv error or maintenance page?)")
    prolog = data[:4096].lower()
    if b"<!doctype" in prolog or b"<!entity" in prolog:  # checked before libxml2 sees any of it
        raise PermanentError(f"{what}: refusing XML with a DTD/entity declarations")
    if len(data) > MAX_RESPONSE_BYTES:
        raise PermanentError(f"{what}: response of {len(data)} bytes is larger than any real feed")
    # huge_tree lifts libxml2's 10 MB text-node limit, so one oversized abstract costs that item
    # its length (see MAX_ABSTRACT_CHARS) instead of costing the whole day; with DTDs refused
    # above there is no entity expansion for it to amplify.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, load_dtd=False,
                             dtd_validation=False)
    root = None
    for _ in range(3):  # at most: the original, then each repair once
        try:
            root = etree.fromstring(data, parser)
            break
        except etree.XMLSyntaxError as exc:
            repaired = _repair(data, str(exc), what)
            if repaired is None:
                raise PermanentError(f"{what}: truncated or malformed XML ({collapse(str(exc))[:160]})") from None
            data = repaired
    if root is None:
        raise PermanentError(f"{what}: truncated or malformed XML (still broken after repairs)")
    if root.getroottree().docinfo.internalDTD is not None:
        raise PermanentError(f"{what}: refusing XML with a DTD/entity declarations")
    return root


# Characters XML 1.0 forbids (C0 controls but tab, LF, CR), raw or as character references; an
# escape character takes its terminal sequence with it (CSI "ESC[31m", OSC "ESC]0;title BEL").
_ESC = rb"(?:\x1b|&#0*27;|&#x0*1[bB];)"
_BEL_OR_ST = rb"(?:\x07|&#0*7;|&#x0*7;|\x1b\\)"
# The sequence's bytes never include "<" or "&": removing it must not eat the markup after it.
_XML_ILLEGAL = re.compile(
    _ESC + rb"(?:\[[0-;=>?]*[ -%'-/]*[@-~]|\][^\x07\x1b&<]*" + _BEL_OR_ST + rb"?|[ -%'-/]*[0-;=-~])?"
    rb"|[\x00-\x08\x0b\x0c\x0e-\x1f]|&#(?:0*(?:[0-8]|1[1-2]|1[4-9]|2[0-9]|3[01])|x0*(?:[0-8]|[bBcCeEfF]|1[0-9a-fA-F]));")


def _repair(data: bytes, error: str, what: str) -> bytes | None:
    """`data` with what one broken item may carry repaired, or None when the error is something
    else (truncation, bad markup: the whole response is unusable). Bytes that are not UTF-8 become
    U+FFFD; control characters (raw or as &#N; references), which XML forbids and which would
    otherwise cost the whole day, are removed. The repair is logged; the items keep their text."""
    lowered = error.lower()
    if "utf-8" in lowered or "encoding" in lowered:
        repaired = data.decode("utf-8", errors="replace").encode("utf-8")
        label = "invalid UTF-8 replaced"
    elif "char" in lowered:  # "PCDATA invalid Char value 27", "xmlParseCharRef: invalid xmlChar value 27"
        repaired, count = _XML_ILLEGAL.subn(b"", data)
        label = f"{count} control character(s) removed"
        if not count:
            return None
    else:
        return None
    if repaired == data:
        return None
    log.warning("%s: %s (%s)", what, label, collapse(error)[:120])
    return repaired


def _rfc822(text: str | None) -> dt.datetime | None:
    try:
        return parsedate_to_datetime(text.strip()) if text else None
    except (TypeError, ValueError):
        return None


def _iso(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def _from_description(item: FeedItem, text: str) -> bool:
    m = DESC_RE.match(text or "")
    if not m:
        return False
    parsed = split_id(m.group(1))
    if parsed is None or parsed[1] is None:  # a versioned arXiv id, nothing else
        return False
    item.id, item.version = parsed
    kind = item.announce_type or m.group(2)
    item.announce_type = kind if kind in ANNOUNCE_TYPES else None  # unknown: derived like the API's
    item.abstract = clean_abstract(m.group(3))
    return True


_RSS_TAGS = {
    "title": "title", "description": "desc", "category": "cat", "pubDate": "date",
    f"{{{ARXIV_NS}}}announce_type": "type", f"{{{DC_NS}}}rights": "license",
    f"{{{DC_NS}}}creator": "creator", f"{{{ARXIV_NS}}}DOI": "doi",
    f"{{{ARXIV_NS}}}journal_reference": "jref", "guid": "guid",
    # Atom flavour
    f"{{{ATOM_NS}}}title": "title", f"{{{ATOM_NS}}}summary": "desc", f"{{{ATOM_NS}}}category": "cat",
    f"{{{ATOM_NS}}}published": "published", f"{{{ATOM_NS}}}id": "guid",
}


def _parse_item(el: etree._Element, dates: dict[str, dt.date | None]) -> FeedItem | None:
    item = FeedItem(id="", version=0, title="", abstract="")
    desc = guid = None
    dirty = False
    for child in el:
        kind = _RSS_TAGS.get(child.tag)
        if kind is None:
            continue
        text = child.text
        dirty = dirty or has_controls(text)
        if kind == "cat":
            term = child.get("term") if text is None else text
            if term and is_category(term.strip()):  # URLs and markup are built from it
                item.categories.append(term.strip())
        elif kind == "title":
            item.title = collapse(text)
        elif kind == "desc":
            desc = text
        elif kind == "guid":
            guid = collapse(text)[:200]
        elif kind in ("date", "published") and text:
            if text not in dates:
                when = _rfc822(text) if kind == "date" else _iso(text)
                dates[text] = when.date() if when else None  # the date in its own time zone
            item.announced = dates[text]
        elif kind == "type":
            item.announce_type = collapse(text) or None  # kept only when one of ANNOUNCE_TYPES (below)
        elif kind == "license":
            item.license = checked_license(text)
        elif kind == "creator":
            item.authors = split_authors(text)
        elif kind == "doi":
            item.doi = checked_doi(text)
        elif kind == "jref":
            item.journal_ref = collapse(text) or None
    if not _from_description(item, desc or ""):
        log.warning("arXiv feed: skipping broken item %r (guid %r): description lacks a valid 'arXiv:<id>vN "
                    "Announce Type: ... Abstract:'", item.title[:80], guid)
        return None
    if dirty:
        log.warning("arXiv feed: item %s: control characters removed", item.id)
    if not item.title:
        log.warning("arXiv feed: skipping item %s: it has no title", item.id)
        return None
    if not item.categories:
        log.warning("arXiv feed: skipping item %s: it has no category", item.id)
        return None
    if len(item.abstract) > MAX_ABSTRACT_CHARS:
        log.warning("arXiv feed: item %s: abstract of %d characters cut to %d", item.id, len(item.abstract),
                    MAX_ABSTRACT_CHARS)
        item.abstract = item.abstract[:MAX_ABSTRACT_CHARS].rsplit(" ", 1)[0] + " …"
    if len(item.title) > MAX_TITLE_CHARS:
        log.warning("arXiv feed: item %s: title of %d characters cut", item.id, len(item.title))
        item.title = item.title[:MAX_TITLE_CHARS] + " …"
    return item


def parse_rss(data: bytes) -> FeedResult:
    """Parse one RSS 2.0 or Atom announcement feed. See the module docstring for errors."""
    root = secure_parse(data, "arXiv feed")
    dates: dict[str, dt.date | None] = {}
    if root.tag == "rss":
        channel = root.find("channel")
        if channel is None:
            raise PermanentError("arXiv feed: RSS document without a <channel>")
        title = collapse(channel.findtext("title"))
        if title.startswith("Feed error for query"):
            raise PermanentError(f"arXiv feed error: {collapse(channel.findtext('description')) or title}")
        pub = _rfc822(channel.findtext("pubDate"))
        result = FeedResult(title=title, day=pub.date() if pub else None,
                            build_date=_rfc822(channel.findtext("lastBuildDate")))
        entries = channel.iterchildren("item")
    elif root.tag == f"{{{ATOM_NS}}}feed":
        title = collapse(root.findtext(f"{{{ATOM_NS}}}title"))
        if title.startswith("Feed error for query"):
            raise PermanentError(f"arXiv feed error: {collapse(root.findtext(f'{{{ATOM_NS}}}subtitle')) or title}")
        updated = _iso(root.findtext(f"{{{ATOM_NS}}}updated"))
        result = FeedResult(title=title, day=None, build_date=updated)
        entries = root.iterchildren(f"{{{ATOM_NS}}}entry")
    else:
        raise PermanentError(f"arXiv feed: not an RSS/Atom feed (root element <{etree.QName(root).localname}>)")
    for el in entries:
        item = _parse_item(el, dates)
        if item is not None:
            result.items.append(item)
    if result.day is None:  # Atom: entries' <published> is midnight US/Eastern of the day
        if result.items and result.items[0].announced:
            result.day = result.items[0].announced
        elif result.build_date is not None:
            result.day = result.build_date.astimezone(EASTERN).date()
    return result

"""arXiv's vocabulary, in one place: categories, announce types, identifiers and URLs.

Everything that becomes part of a URL or of markup is validated here: an identifier is either a
new-style id (``2411.17700``) or an old-style one (``hep-th/9901001``, ``math.GT/0309136``), a
version is a positive integer, a category is an archive (``cs``, ``astro-ph``) optionally with a
subject class (``cs.LG``, ``cond-mat.mes-hall``). URLs are built only from validated parts, with
quoting, so a hostile feed cannot smuggle markup or a scheme into a link.
"""
from __future__ import annotations

import re
from urllib.parse import quote

ANNOUNCE_TYPES = ("new", "cross", "replace", "replace-cross")

# An archive ("cs", "math-ph", "astro-ph") or a category ("cs.LG", "astro-ph.CO", "cond-mat.mes-hall").
CATEGORY_RE = re.compile(r"^[a-z][a-z-]{0,30}(\.[A-Za-z][A-Za-z-]{0,30})?$")
# New-style (YYMM.NNNN / YYMM.NNNNN) or old-style (archive[.SUBJ]/YYMMNNN) id, optional version.
ID_RE = re.compile(r"^(\d{4}\.\d{4,5}|[a-z][a-z-]{0,30}(?:\.[A-Za-z][A-Za-z-]{0,30})?/\d{7})(?:v([1-9]\d{0,3}))?$")
# The same inside free text a user typed ("arXiv:2411.18050v2", "https://arxiv.org/abs/2411.18050").
_LOOSE_PREFIX_RE = re.compile(r"^(?:arxiv:|https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/)", re.I)

ABS_BASE = "https://arxiv.org/abs"
PDF_BASE = "https://arxiv.org/pdf"
HTML_BASE = "https://arxiv.org/html"


def user_agent(contact: str) -> str:
    """The descriptive User-Agent every request to arXiv carries (its terms ask for one)."""
    return f"arxiv-bot/0.1 (+{contact})"


def is_category(text: str) -> bool:
    return isinstance(text, str) and bool(CATEGORY_RE.match(text))


def split_id(text: str) -> tuple[str, int | None] | None:
    """'2411.17700v2' -> ('2411.17700', 2); 'hep-th/9901001' -> ('hep-th/9901001', None);
    None when the text is not an arXiv id (no prefixes, no trailing characters)."""
    m = ID_RE.match(text.strip()) if isinstance(text, str) else None
    if not m:
        return None
    return m.group(1), (int(m.group(2)) if m.group(2) else None)


def find_id(text: str) -> str | None:
    """The bare id in what a user typed: an id, 'arXiv:<id>', an arxiv.org abs/pdf URL; else None."""
    if not isinstance(text, str):
        return None
    stripped = _LOOSE_PREFIX_RE.sub("", text.strip()).removesuffix(".pdf")
    parsed = split_id(stripped)
    return parsed[0] if parsed else None


def _path(paper_id: str, version: int | None) -> str:
    # Ids are validated when parsed. Anything else that reaches here (a stored oddity) is
    # percent-encoded whole, "/" and "." included, so it stays one path segment and can never
    # climb out of the base ("../") or carry markup or a query.
    text = str(paper_id)
    valid = ID_RE.match(text) is not None and "v" not in text.rsplit("/", 1)[-1]
    suffix = f"v{int(version)}" if version and int(version) > 0 else ""
    return (quote(text, safe="/.-") if valid else quote(text, safe="")) + suffix


def abs_url(paper_id: str, base: str = ABS_BASE) -> str:
    return f"{base.rstrip('/')}/{_path(paper_id, None)}"


def pdf_url(paper_id: str, version: int | None, base: str = PDF_BASE) -> str:
    """<base>/<id>v<version> (or without a version when None)."""
    return f"{base.rstrip('/')}/{_path(paper_id, version)}"


def html_url(paper_id: str, version: int | None, base: str = HTML_BASE) -> str:
    return f"{base.rstrip('/')}/{_path(paper_id, version)}"


def in_set(category: str, categories) -> bool:
    """True when `category` ('cs.LG') is one of `categories`, or its archive ('cs') is.
    Case-insensitive, like arXiv's own feed queries."""
    cat = category.lower()
    archive = cat.split(".", 1)[0]
    for c in categories:
        c = c.lower()
        if c == cat or c == archive:
            return True
    return False


def relevant(item, categories) -> bool:
    """At least one of the item's categories (anything with .categories) is in the set."""
    return any(in_set(c, categories) for c in item.categories)


def effective_type(item, categories) -> str:
    """The announce type relative to `categories`, as arXiv would compute it for a feed of exactly
    that set: new/replace when the primary is in the set, cross/replace-cross when it is not.
    A 'cross' in the source feed stays 'cross' (a cross-list added to an older paper). Items
    without a type (query API) count as new for v1 and as a replacement otherwise. `item` has
    .announce_type, .version and .categories (primary first); applying it again with a subset
    of the categories gives the type relative to the subset (a profile's view of the union)."""
    kind = item.announce_type
    primary_in = in_set(item.categories[0], categories) if item.categories else False
    if kind == "cross":
        return "cross"
    if kind in ("replace", "replace-cross") or (kind is None and item.version > 1):
        return "replace" if primary_in else "replace-cross"
    return "new" if primary_in else "cross"

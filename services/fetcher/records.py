"""FeedItem: one arXiv paper as the fetcher sees it (from the RSS/Atom feed or the query API),
plus the small text helpers both parsers share (author lists, whitespace, abstracts, ids).

Every helper here returns text without control characters or terminal escape sequences
(shared.text.clean): whatever a feed carries, nothing stored from it can drive a terminal or
break a renderer."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from shared.text import clean, has_controls  # noqa: F401  (has_controls: for the parsers)

_PARENS = re.compile(r"\([^()]*\)")
# DOIs as registries issue them (10.<registrant>/<suffix>, no markup characters); the feeds put
# several in one element separated by spaces.
_DOI_RE = re.compile(r"^10\.\d{4,9}/[^\s<>\"'`]{1,200}(?: 10\.\d{4,9}/[^\s<>\"'`]{1,200}){0,9}$")
_LICENSE_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?/[A-Za-z0-9._~/%+-]*$")


@dataclass(slots=True)
class FeedItem:
    id: str
    version: int
    title: str
    abstract: str
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # primary first
    announce_type: str | None = None
    doi: str | None = None
    journal_ref: str | None = None
    comment: str | None = None
    license: str | None = None
    announced: dt.date | None = None
    published: dt.datetime | None = None
    updated: dt.datetime | None = None

    @property
    def primary_category(self) -> str:
        return self.categories[0] if self.categories else ""


def collapse(text: str | None) -> str:
    """All runs of whitespace (wrapped titles) become one space; ends stripped."""
    # str.split() is several times faster than a regex here, and this runs per line per item.
    return " ".join(clean(text, keep_newlines=False).split()) if text else ""


def clean_abstract(text: str) -> str:
    """The whole abstract, paragraphs kept. arXiv marks a paragraph by indenting its first line
    (a line that starts with whitespace); an unindented line continues the previous one (the
    legacy API hard-wraps at 80 columns). Paragraphs are joined with one newline."""
    text = clean(text)
    if "\n" not in text:  # most abstracts: one paragraph
        return " ".join(text.split())
    paragraphs: list[str] = []
    for line in text.strip().splitlines():
        stripped = collapse(line)
        if not stripped:
            continue
        if paragraphs and not line[:1].isspace():
            paragraphs[-1] += " " + stripped
        else:
            paragraphs.append(stripped)
    return "\n".join(paragraphs)


def split_authors(creator: str | None) -> list[str]:
    """dc:creator is ONE comma-separated string; affiliations sit in parentheses and may contain
    commas themselves ("A (Inst, Dept), B"). Split only at depth 0, then drop the affiliations."""
    if not creator:
        return []
    creator = clean(creator, keep_newlines=False)
    if "(" not in creator:  # the common case, kept fast
        return [n for n in (" ".join(part.split()) for part in creator.split(",")) if n]
    names, depth, start = [], 0, 0
    for i, ch in enumerate(creator):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            names.append(creator[start:i])
            start = i + 1
    names.append(creator[start:])
    out = []
    for name in names:
        # Nested parentheses: strip innermost groups until none are left.
        while "(" in name and _PARENS.search(name):
            name = _PARENS.sub("", name)
        name = collapse(name.replace("(", "").replace(")", ""))
        if name:
            out.append(name)
    return out


def checked_doi(text: str | None) -> str | None:
    """The DOI, or None when the text is not one (it is published in papers.json)."""
    doi = collapse(text)
    return doi if _DOI_RE.match(doi) else None


def checked_license(text: str | None) -> str | None:
    """The license URL (http(s), a plain path), or None for anything else."""
    url = collapse(text)
    return url if _LICENSE_RE.match(url) else None

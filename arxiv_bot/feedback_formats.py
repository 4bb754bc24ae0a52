"""The files `arxiv-bot feedback import` reads, recognised by their content:

- JSON lines, one {"id": "2411.17700", "rating": "up"|"down"} per line (what `feedback
  export` writes);
- CSL-JSON (Zotero's "CSL JSON" export: an array of items, or {"items": [...]});
- BibTeX (Zotero's, arXiv's own "export BibTeX citation", Google Scholar's);
- a plain list of arXiv ids, one per line ("2411.17700", "arXiv:2411.17700v2", an arxiv.org
  abs/pdf URL), optionally followed by up or down; blank lines and # comments are ignored.

A bibliography entry counts as "up" (the reader keeps it) when it carries an arXiv id: eprint
with archivePrefix/eprinttype arXiv (or an eprint that is an arXiv id), a URL on arxiv.org/abs or
/pdf, the DOI 10.48550/arXiv.<id> that arXiv gives every paper, or "arXiv:<id>" in journal,
number, note and similar fields. Entries without one (books, journal papers without a preprint)
are skipped and counted. Anything malformed (bad JSON, an unknown rating, an unbalanced BibTeX
entry, a line that is no id) raises FormatError with one line naming the place: nothing of the
file is imported.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from shared.arxiv import find_id

from .bibtex import FormatError, bibtex_entries

RATINGS = ("up", "down")
_DOI = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/)?10\.48550/arxiv\.(\S+)$", re.I)
_ARXIV_IN_TEXT = re.compile(r"arxiv\s*[:.]?\s*(?:abs/)?([a-z][a-z.-]*/\d{7}|\d{4}\.\d{4,5})(?:v\d+)?", re.I)
_URL = re.compile(r"https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/[^\s\"'<>}]+", re.I)
TEXT_FIELDS = ("journal", "journaltitle", "number", "note", "howpublished", "publisher", "container-title",
               "archive_location", "archive-location", "collection-title", "annote", "extra", "id", "eprint")




@dataclass
class Parsed:
    format: str
    ratings: dict[str, str] = field(default_factory=dict)  # id -> rating; a later line wins
    skipped: int = 0                                       # entries without an arXiv id


def parse(text: str, name: str = "the file") -> Parsed:
    """The ratings in `text` (see the module docstring); raises FormatError."""
    text = text.lstrip("\ufeff")
    stripped = text.strip()
    if not stripped:
        raise FormatError(f"{name}: the file is empty")
    if stripped[0] == "[":
        return _csl(_json(stripped, name), name)
    if stripped[0] == "{":
        try:
            whole = json.loads(stripped)
        except json.JSONDecodeError:
            return _json_lines(text, name)
        if isinstance(whole, dict) and "rating" in whole:
            return _json_lines(text, name)
        return _csl(whole, name)
    if re.search(r"^\s*@[A-Za-z]+\s*[{(]", text, re.M):
        return _bibtex(text, name)
    return _plain(text, name)


def _json(text: str, name: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def _json_lines(text: str, name: str) -> Parsed:
    out = Parsed("JSON lines")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{name} line {n}: invalid JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise FormatError(f"{name} line {n}: expected an object like {{\"id\": \"2411.17700\", \"rating\": \"up\"}}")
        pid = find_id(row.get("id")) if isinstance(row.get("id"), str) else None
        if pid is None:
            raise FormatError(f"{name} line {n}: \"id\" must be an arXiv id such as 2411.17700")
        if row.get("rating") not in RATINGS:
            raise FormatError(f"{name} line {n}: \"rating\" must be \"up\" or \"down\"")
        out.ratings[pid] = row["rating"]
    return out


def entry_id(fields: dict) -> str | None:
    """The arXiv id of a bibliography entry (BibTeX fields lower-cased, or a CSL-JSON item)."""
    f = {str(k).lower(): v for k, v in fields.items()}

    def text(key) -> str:
        value = f.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        return value.strip() if isinstance(value, str) else ""

    prefix = (text("archiveprefix") or text("eprinttype") or text("archive")).lower()
    if text("eprint") and (prefix in ("arxiv", "") and find_id(text("eprint"))):
        return find_id(text("eprint"))
    for key in ("doi", "url", "id", "link"):
        value = text(key)
        m = _DOI.match(value)
        if m and find_id(m.group(1)):
            return find_id(m.group(1))
        for url in _URL.findall(value):
            if find_id(url.rstrip(".,;")):
                return find_id(url.rstrip(".,;"))
    if prefix == "arxiv" and find_id(text("number")):
        return find_id(text("number"))
    for key in TEXT_FIELDS:
        m = _ARXIV_IN_TEXT.search(text(key))
        if m and find_id(m.group(1)):
            return find_id(m.group(1))
    return None


def _csl(data, name: str) -> Parsed:
    items = data.get("items") if isinstance(data, dict) and isinstance(data.get("items"), list) else data
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise FormatError(f"{name}: expected CSL-JSON (a list of items) or JSON lines of {{\"id\", \"rating\"}}")
    out = Parsed("CSL-JSON")
    for item in items:
        pid = entry_id(item)
        if pid is None:
            out.skipped += 1
        else:
            out.ratings[pid] = "up"
    return _some(out, name, len(items))


def _some(out: Parsed, name: str, entries: int) -> Parsed:
    if not out.ratings:
        raise FormatError(f"{name}: no arXiv id in any of its {entries} {out.format} entries")
    return out


def _plain(text: str, name: str) -> Parsed:
    out = Parsed("list of arXiv ids")
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        pid = find_id(words[0])
        rating = words[1].lower() if len(words) > 1 else "up"
        if pid is None or len(words) > 2 or rating not in RATINGS:
            raise FormatError(f"{name} line {n}: expected an arXiv id, optionally followed by up or down; "
                              f"got {line.strip()[:60]!r}")
        out.ratings[pid] = rating
    if not out.ratings:
        raise FormatError(f"{name}: no arXiv id in it (only blank lines and comments)")
    return out


# -- BibTeX ------------------------------------------------------------------------------------
def _bibtex(text: str, name: str) -> Parsed:
    out = Parsed("BibTeX")
    entries = 0
    for fields in bibtex_entries(text, name):
        entries += 1
        pid = entry_id(fields)
        if pid is None:
            out.skipped += 1
        else:
            out.ratings[pid] = "up"
    return _some(out, name, entries)

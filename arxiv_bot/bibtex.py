"""A small, tolerant BibTeX reader: enough for the bibliographies people export (Zotero, arXiv's
"export BibTeX citation", Google Scholar) to find each entry's fields. Not a full BibTeX: @string
macros are not expanded (a macro's name is kept as its value), which never hides an arXiv id.
"""
from __future__ import annotations

import re

from shared.errors import UserError

_ENTRY = re.compile(r"@\s*([A-Za-z]+)\s*([{(])")
_FIELD = re.compile(r"\s*([A-Za-z][\w:.+-]*)\s*=\s*")
_BARE = re.compile(r"[\w:.+/-]+")


class FormatError(UserError):
    """The import file is not one of the formats, or has an error; one line, nothing imported."""


def bibtex_entries(text: str, name: str = "the file"):
    """Each entry's fields ({lower-case name: text}), @comment/@preamble/@string skipped.
    Values: {braced} (nested braces kept), "quoted", numbers or macro names, joined by #."""
    pos = 0
    while True:
        at = text.find("@", pos)
        if at < 0:
            return
        m = _ENTRY.match(text, at)
        if m is None:
            pos = at + 1  # an @ in free text between entries (BibTeX ignores it)
            continue
        kind, closer = m.group(1).lower(), "}" if m.group(2) == "{" else ")"
        line = text.count("\n", 0, at) + 1
        body_start = m.end()
        end = _balanced_end(text, body_start, closer)
        if end < 0:
            raise FormatError(f"{name} line {line}: BibTeX entry @{m.group(1)} is not closed")
        pos = end + 1
        if kind in ("comment", "preamble", "string"):
            continue
        yield _fields(text[body_start:end], name, line)


def _balanced_end(text: str, i: int, closer: str) -> int:
    """Index of the `closer` ("}" or ")") that ends what starts at `i` (just after its opener),
    braces balanced in between; -1 when there is none."""
    depth = 0
    for j in range(i, len(text)):
        ch = text[j]
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return j if closer == "}" else -1
            depth -= 1
        elif ch == ")" and closer == ")" and depth == 0:
            return j
    return -1


def _fields(body: str, name: str, line: int) -> dict:
    key_end = body.find(",")
    if key_end < 0:
        return {}
    out, i, n = {}, key_end + 1, len(body)
    while i < n:
        while i < n and body[i] in " \t\r\n,":
            i += 1
        if i >= n:
            break
        m = _FIELD.match(body, i)
        if m is None:
            raise FormatError(f"{name} line {line}: BibTeX entry has a malformed field near {body[i:i + 30]!r}")
        i, parts = m.end(), []
        while True:
            value, i = _value(body, i, name, line)
            parts.append(value)
            while i < n and body[i].isspace():
                i += 1
            if i < n and body[i] == "#":
                i += 1
                while i < n and body[i].isspace():
                    i += 1
                continue
            break
        out[m.group(1).lower()] = " ".join("".join(parts).split())
    return out


def _value(body: str, i: int, name: str, line: int) -> tuple[str, int]:
    if i < len(body) and body[i] == "{":
        end = _balanced_end(body, i + 1, "}")
        if end < 0:
            raise FormatError(f"{name} line {line}: BibTeX value has an unbalanced brace")
        return body[i + 1:end].replace("{", "").replace("}", ""), end + 1
    if i < len(body) and body[i] == '"':
        j, depth = i + 1, 0
        while j < len(body) and not (body[j] == '"' and depth == 0):
            depth += {"{": 1, "}": -1}.get(body[j], 0)
            j += 1
        if j >= len(body):
            raise FormatError(f"{name} line {line}: BibTeX value has an unclosed quote")
        return body[i + 1:j].replace("{", "").replace("}", ""), j + 1
    m = _BARE.match(body, i)
    if m is None:
        raise FormatError(f"{name} line {line}: BibTeX field has no value near {body[i:i + 30]!r}")
    return m.group(0), m.end()

"""A paper's PDF as sections (sections.Section): text in reading order (pdf_layout), page
furniture removed, headings found, paragraphs, captions and tables as blocks.

Headings come from the PDF's outline (bookmarks) when it has one, and from the text: a line
that is a known section name ("References", "Methods", "Acknowledgements"...), or a numbered
heading ("3 Method", "IV. RESULTS", "5.2 Ablations", "B. Setup") whose number follows the
previous one's. Text before the first heading is front matter (title, authors, affiliations).
Top-level sections after the references that are lettered ("A Proofs") or say nothing known
are appendices. Raises PermanentError (one line) for a file that cannot be read or has no text.
"""
from __future__ import annotations

import re
from collections import Counter

from shared.errors import PermanentError

from .sections import Section, classify, strip_number

MIN_CHARS = 500  # less than this from a whole PDF: scanned images, not text

_KNOWN = {"abstract", "introduction", "related work", "background", "preliminaries", "method", "methods",
          "methodology", "approach", "experiments", "experimental setup", "experimental results", "evaluation",
          "results", "discussion", "conclusion", "conclusions", "limitations", "references", "bibliography",
          "acknowledgements", "acknowledgments", "acknowledgement", "acknowledgment", "appendix", "appendices",
          "supplementary information", "supplementary material", "supplementary materials", "extended data",
          "code availability", "data availability", "author contributions", "competing interests",
          "additional information", "future work", "broader impact", "ethics statement",
          "conclusion and future work", "conclusions and future work", "results and discussion"}
_STAMP_RE = re.compile(r"^arXiv:\S+\s+\[[^\]]+\]\s+\d{1,2}\s+\w{3}\s+\d{4}$")
_NUMBERED_RE = re.compile(r"^(?P<num>\d{1,2}(?:\.\d{1,2}){0,2}|[IVX]{1,5}|[A-H])(?P<dot>\.?)\s+"
                          r"(?P<title>[A-Z][^\n]{1,80})$")
_CAPTION_RE = re.compile(r"^(?P<kind>Table|TABLE|Tab\.|Fig\.|Figure|FIGURE)\s*[0-9IVX]+[.:]?(\s|$)")
_APPENDIX_NUM_RE = re.compile(r"^(?:Appendix\s+)?[A-H](?:\.\d+)*\.?\s")
_SENTENCE_END = (".", "!", "?", ":")


def extract(pdf_bytes: bytes) -> list[Section]:
    """The PDF's sections in document order (module docstring)."""
    from .pdf_layout import page_texts

    pages, outline = page_texts(pdf_bytes)
    lines = clean_lines(pages)
    if sum(len(line) for line in lines) < MIN_CHARS:
        raise PermanentError("cannot read PDF: no extractable text (scanned images?)")
    return split_sections(lines, outline)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def clean_lines(pages: list[str]) -> list[str]:
    """The pages' lines without page furniture: page numbers, the arXiv side stamp, running
    heads and feet (a short line at the top or bottom of at least 30% of the pages). PDFium's
    soft-hyphen marks are joined ("com\\ufffeputing" -> "computing")."""
    split = []
    for page in pages:
        page = page.replace("\ufffe", "").replace("\u00ad", "").replace("\r\n", "\n").replace("\r", "\n")
        page = "".join(c if c in "\n\t" or c >= " " else " " for c in page)  # control characters
        split.append([" ".join(line.split()) for line in page.split("\n")])
    edges = Counter()
    for lines in split:
        body = [ln for ln in lines if ln]
        edges.update({re.sub(r"\d+", "#", ln) for ln in body[:2] + body[-2:] if len(ln) < 100})
    running = {key for key, n in edges.items() if len(pages) >= 4 and n >= 0.3 * len(pages)}
    out = []
    for lines in split:
        body = [ln for ln in lines if ln]
        for k, line in enumerate(body):
            at_edge = k < 2 or k >= len(body) - 2
            if _STAMP_RE.match(line) or (at_edge and (line.isdigit() or re.sub(r"\d+", "#", line) in running)):
                continue
            out.append(line)
    return out


class _Numbering:
    """Accepts a numbered heading only when its number follows the last one: 1, 2, 2.1, 2.2, 3;
    I, II, III; A, B under a roman or numbered section. Stops tables and lists looking like headings."""

    _ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV"]

    def __init__(self):
        self.last: list[int] = []
        self.roman = 0
        self.letter = 0
        self.offset = 0  # 1 inside a series that restarted under an unnumbered heading
        self.after_unnumbered = False  # the last heading was a known, unnumbered one
        self.appendix = 0  # appendices seen after the references ("A Proofs", "B More results")

    def accept(self, num: str, dot: str) -> int | None:
        """The heading's level when `num` is next in sequence, else None. A series that starts
        again right after an unnumbered heading ("Methods", then "I. Audit design") is taken
        as that heading's subsections."""
        level = self._accept(num, dot)
        return None if level is None else level + self.offset

    def accept_appendix(self, num: str) -> bool:
        if len(num) == 1 and num.isalpha() and ord(num) - ord("A") == self.appendix:
            self.appendix += 1
            return True
        return False

    def _accept(self, num: str, dot: str) -> int | None:
        if num in ("1", "I") and self.after_unnumbered and (self.last or self.roman):
            self.last, self.roman, self.letter, self.offset = [], 0, 0, 1
        if num.isdigit() or "." in num and num.replace(".", "").isdigit():
            parts = [int(p) for p in num.split(".")]
            prev = self.last
            ok = (len(parts) == 1 and parts[0] == (prev[0] + 1 if prev else 1)) or (
                len(parts) > 1 and parts[:-1] == prev[:len(parts) - 1] and
                parts[-1] == (prev[len(parts) - 1] + 1 if len(prev) >= len(parts) else 1))
            if ok:
                self.last, self.letter = parts, 0
                return len(parts)
            return None
        if num in self._ROMAN and dot:
            if self._ROMAN.index(num) == self.roman:
                self.roman += 1
                self.letter = 0
                return 1
            return None
        if len(num) == 1 and num.isalpha() and dot and (self.roman or self.last):
            if ord(num) - ord("A") == self.letter:
                self.letter += 1
                return 2
        return None


def _heading(line: str, outline: list[tuple[int, str]], pos: int, numbering: _Numbering, after_refs: bool):
    """(level, title, outline entries used) when `line` is a heading, else None."""
    if len(line) > 100 or line.endswith((",", ";")):
        return None
    key = _norm(strip_number(line))
    for skip in range(min(3, len(outline) - pos)):  # an outline entry may be missing from the text
        level, title = outline[pos + skip]
        if key and key == _norm(strip_number(title)):
            m = _NUMBERED_RE.match(line)
            numbering.after_unnumbered = m is None
            if m:
                numbering.accept(m.group("num"), m.group("dot"))
            return level + 1, line, skip + 1
    bare = strip_number(line).rstrip(".").strip().lower()
    m = _NUMBERED_RE.match(line)
    if bare == line.rstrip(".").strip().lower() and (bare in _KNOWN or re.fullmatch(r"appendix( [a-h])?", bare)):
        numbering.after_unnumbered, numbering.offset = True, 0
        return 1, line, 0
    if m and not line.endswith(".") and len(m.group("title").split()) <= 10 and not re.search(r"\d{3,}", line):
        if after_refs and numbering.accept_appendix(m.group("num")):
            return 1, line, 0
        level = numbering.accept(m.group("num"), m.group("dot"))
        if level is not None:
            numbering.after_unnumbered = False
            return level, line, 0
    if bare in _KNOWN:  # a numbered known heading out of sequence ("7 Conclusion" after a missed 6)
        return 1, line, 0
    return None


def split_sections(lines: list[str], outline: list[tuple[int, str]]) -> list[Section]:
    """Lines -> sections (module docstring). Outline levels start at 0 (PDFium's)."""
    base = min((lvl for lvl, _ in outline), default=0)
    outline = [(lvl - base, title) for lvl, title in outline]
    numbering = _Numbering()
    sections = [Section("", "front", [], 1)]
    body: list[list[str]] = [[]]
    parents: dict[int, str] = {}
    pos = 0
    after_refs = False
    for line in lines:
        found = _heading(line, outline, pos, numbering, after_refs)
        if found is None:
            body[-1].append(line)
            continue
        level, title, used = found
        pos += used
        kind = classify(title, parents.get(level - 1) if level > 1 else None)
        if kind == "references":
            after_refs = True
        elif after_refs and level == 1 and (kind == "other" or _APPENDIX_NUM_RE.match(title)):
            kind = "appendix"
        parents[level] = kind
        sections.append(Section(title, kind, [], level))
        body.append([])
    for section, section_lines in zip(sections, body):
        section.blocks = blocks(section_lines)
    return sections


def _numeric(line: str) -> bool:
    words = line.split()
    return len(words) >= 2 and sum(any(c.isdigit() for c in w) for w in words) >= 0.4 * len(words)


def blocks(lines: list[str]) -> list[tuple[str, str]]:
    """A section's lines as blocks: captions ("table"/"figure", a table's caption takes the
    number-dense lines around it), runs of number-dense lines ("table", kept line by line), and
    paragraphs ("p", lines joined) ending at a short line that ends a sentence."""
    out: list[list] = []  # [type, [lines]]
    typical = sorted(len(ln) for ln in lines)[len(lines) // 2] if lines else 0
    numeric_line = [_numeric(ln) for ln in lines] + [False]
    caption_open = False
    for k, line in enumerate(lines):
        m = _CAPTION_RE.match(line)
        if m:
            out.append(["table" if m.group("kind").lower().startswith("tab") else "figure", [line]])
            caption_open = not line.endswith(".")
            continue
        if caption_open and out and len(out[-1][1]) < 6:
            out[-1][1].append(line)
            caption_open = not line.endswith(".")
            continue
        caption_open = False
        following = numeric_line[k + 1]
        in_table = bool(out and out[-1][0] == "table")
        near = (k > 0 and numeric_line[k - 1]) or following
        # A table's own short labels ("Panel B: Controls") between its rows stay in it.
        numeric = (numeric_line[k] and (near or in_table)) or (in_table and following and len(line) < 0.6 * typical)
        if numeric:
            if out and out[-1][0] == "table":
                out[-1][1].append(line)
            else:
                out.append(["table", [line]])
            continue
        if not out or out[-1][0] != "p" or out[-1][2]:
            out.append(["p", [], False])
        out[-1][1].append(line)
        if line.endswith(_SENTENCE_END) and len(line) < 0.8 * typical:
            out[-1][2] = True  # the paragraph ends here
    result = []
    for block in out:
        kind, block_lines = block[0], block[1]
        if kind == "p":
            text = ""
            for line in block_lines:  # unwrap: a line-end hyphen joins ("high-" "performance")
                text += line if text.endswith("-") or not text else " " + line
        else:
            text = "\n".join(block_lines)
        if text.strip():
            result.append((kind, text.strip()))
    return result

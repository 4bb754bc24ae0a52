"""arXiv's HTML rendering of a paper (LaTeXML output) as sections (sections.Section).

LaTeXML marks the structure: <section class="ltx_section|ltx_subsection|ltx_appendix|
ltx_bibliography"> with an .ltx_title heading, .ltx_abstract, .ltx_acknowledgements, paragraphs
(p.ltx_p), tables (figure.ltx_table: a caption and .ltx_tr rows of .ltx_td cells), figures
(figure.ltx_figure: the caption is what the model can use), equations (table.ltx_equation).
Math becomes its TeX source (the alttext), so "$0.92$" reads 0.92. The page's own machinery
(scripts, styles, the site header and footer, buttons, footnote pop-ups) is dropped: only the
text of the <article> remains, and it is data like an abstract (prompt.neutralise applies).

`extract` raises PermanentError (one line) when the page is not a LaTeXML paper (arXiv's "No
HTML for ..." page served with 200, a conversion that produced no body).
"""
from __future__ import annotations

import re

from shared.errors import PermanentError

from .sections import Section, classify

MIN_BODY_CHARS = 500
_SECTION_CLASSES = {"ltx_section", "ltx_subsection", "ltx_subsubsection", "ltx_appendix", "ltx_bibliography",
                    "ltx_chapter", "ltx_part", "ltx_paragraph", "ltx_subparagraph", "ltx_index"}
_DROP_TAGS = {"script", "style", "noscript", "template", "button", "nav", "form", "input", "select", "textarea",
              "iframe", "object", "embed", "svg", "canvas", "img", "audio", "video", "annotation", "annotation-xml"}
_DROP_CLASSES = {"ltx_note", "ltx_ERROR", "ltx_page_footer", "ltx_page_header", "ltx_pagination", "ltx_authors",
                 "ltx_dates", "ltx_role_footnote", "ltx_bibblock_url"}
_SKIP_CLASSES = {"ltx_title", "ltx_authors", "ltx_dates", "ltx_classification", "ltx_keywords", "ltx_TOC"}
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u206f\ufeff]")


def _classes(el) -> set[str]:
    return set((el.get("class") or "").split())


def text_of(el) -> str:
    """The element's text on one line: math as its TeX (alttext), footnotes and page machinery
    left out, control and bidi-override characters removed."""
    parts: list[str] = []
    _collect(el, parts)
    return " ".join(_CONTROL_RE.sub(" ", "".join(parts)).split())


def _collect(el, parts: list[str]) -> None:
    tag = el.tag if isinstance(el.tag, str) else ""
    local = tag.rsplit("}", 1)[-1].lower()
    if local == "math":
        alt = el.get("alttext")
        parts.append(f" {alt} " if alt else " ".join(el.itertext()))
        return
    if local in _DROP_TAGS or _classes(el) & _DROP_CLASSES or not tag:
        return
    if local == "br":
        parts.append(" ")
    if el.text:
        parts.append(el.text)
    for child in el:
        _collect(child, parts)
        if child.tail:
            parts.append(child.tail)
    if local in ("td", "th", "p", "div", "li", "tr"):
        parts.append(" ")


def _table(el) -> str:
    """Caption, then one line per row: cells joined with " | "."""
    lines = []
    for cap in el.iter("figcaption"):
        if _nearest_figure(cap) is el:
            lines.append(text_of(cap))
    rows = [r for r in el.iter() if isinstance(r.tag, str) and ("ltx_tr" in _classes(r) or r.tag == "tr")]
    seen = set()
    for row in rows:
        if id(row) in seen:
            continue
        seen.add(id(row))
        cells = [c for c in row if isinstance(c.tag, str) and (_classes(c) & {"ltx_td", "ltx_th"} or c.tag in ("td", "th"))]
        line = " | ".join(text_of(c) for c in cells).strip(" |")
        if line:
            lines.append(line)
    return "\n".join(lines)


def _nearest_figure(el):
    parent = el.getparent()
    while parent is not None and parent.tag != "figure":
        parent = parent.getparent()
    return parent


class _Builder:
    def __init__(self):
        self.sections: list[Section] = [Section("", "front", [], 1)]

    def add(self, kind: str, text: str) -> None:
        if text.strip():
            self.sections[-1].blocks.append((kind, text.strip()))

    def walk(self, el, parent_kind: str | None, level: int) -> None:
        for child in el:
            if not isinstance(child.tag, str):
                continue
            tag, cls = child.tag.lower(), _classes(child)
            if tag in _DROP_TAGS or cls & _DROP_CLASSES or cls & _SKIP_CLASSES:
                continue
            if cls & _SECTION_CLASSES or tag == "section":
                self.section(child, cls, parent_kind, level)
            elif "ltx_abstract" in cls:
                self.open("Abstract", "abstract", level)
                self.walk(child, "abstract", level + 1)
            elif "ltx_acknowledgements" in cls:
                self.open("Acknowledgements", "acknowledgements", level)
                self.add("p", text_of(child))
            elif tag == "figure" and ("ltx_table" in cls or any(
                    "ltx_tabular" in _classes(d) for d in child.iter() if isinstance(d.tag, str))):
                self.add("table", _table(child))
            elif tag == "figure" or "ltx_float" in cls:
                self.add("figure", " ".join(text_of(c) for c in child.iter("figcaption")))
            elif cls & {"ltx_equation", "ltx_equationgroup", "ltx_eqn_table"}:
                self.add("eq", text_of(child))
            elif "ltx_tabular" in cls or tag == "table":
                self.add("table", _table(child))
            elif tag == "p" or "ltx_p" in cls:
                self.add("p", text_of(child))
            elif tag in ("ul", "ol", "dl") or cls & {"ltx_itemize", "ltx_enumerate", "ltx_description"}:
                items = [text_of(li) for li in child if isinstance(li.tag, str)]
                self.add("p", "\n".join(f"- {t}" for t in items if t))
            elif tag in ("pre", "code") or "ltx_listing" in cls:
                self.add("p", text_of(child))
            else:
                self.walk(child, parent_kind, level)

    def open(self, title: str, kind: str, level: int) -> Section:
        section = Section(title, kind, [], max(level, 1))
        self.sections.append(section)
        return section

    def section(self, el, cls: set[str], parent_kind: str | None, level: int) -> None:
        title_el = next((c for c in el if isinstance(c.tag, str) and "ltx_title" in _classes(c)), None)
        title = text_of(title_el) if title_el is not None else ""
        if "ltx_bibliography" in cls:
            kind = "references"
        elif "ltx_appendix" in cls:
            kind = classify(title)
            kind = kind if kind in ("acknowledgements", "references", "limitations") else "appendix"
        else:
            kind = classify(title, parent_kind)
            if parent_kind == "appendix" and kind not in ("acknowledgements", "references"):
                kind = "appendix"
        self.open(title or kind.capitalize(), kind, level)
        self.walk(el, kind, level + 1)
        # Text after a subsection but still inside this section (rare) continues this section.
        if self.sections[-1].title != (title or kind.capitalize()):
            self.open(title or kind.capitalize(), kind, level)


def extract(html: bytes | str) -> list[Section]:
    """The paper's sections in document order (module docstring)."""
    import lxml.html
    from lxml import etree

    try:
        doc = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError) as exc:
        raise PermanentError(f"cannot read the HTML: {' '.join(str(exc).split())[:150]}") from None
    article = next(iter(doc.xpath('//*[contains(concat(" ", normalize-space(@class), " "), " ltx_document ")]')),
                   None)
    if article is None:
        raise PermanentError("the HTML is not a LaTeXML paper (no ltx_document)")
    builder = _Builder()
    builder.walk(article, None, 1)
    sections = [s for s in builder.sections if s.blocks or s.kind == "front"]
    body = sum(len(t) for s in sections if s.kind not in ("front", "references") for _, t in s.blocks)
    if body < MIN_BODY_CHARS:
        raise PermanentError(f"the HTML has almost no text ({body} characters)")
    return sections

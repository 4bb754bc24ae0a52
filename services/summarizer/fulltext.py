"""What the model reads for ai_summary.input = "fulltext": the paper, not only its abstract.

Source order, for paper version <id>v<n>:
1. arXiv's HTML rendering, ARXIV_HTML_URL/<id>v<n> (LaTeXML: sections, tables, captions);
2. else the PDF, ARXIV_PDF_URL/<id>v<n>, read in layout order (fulltext_pdf, pdf_layout);
3. else the abstract, with a note saying why (no HTML and no PDF, an unreadable PDF...).
A 404 (arXiv's "No HTML for '<id>'" page) or an unusable page moves on to the next source;
429, 5xx and timeouts are a TransientError: the task is retried later (download.py) rather
than settling for a poorer source. What was read, from which source and why, is stored per
paper version (textcache), so no later summary of that version downloads it again.
`body` then selects the sections that fit the token budget (sections.select).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from shared import arxiv
from shared.errors import PermanentError
from shared.models import SOURCE_ABSTRACT, SOURCE_HTML, SOURCE_PDF, Paper

from . import download, textcache
from .sections import Section

log = logging.getLogger(__name__)


@dataclass
class FullText:
    source: str                 # SOURCE_HTML, SOURCE_PDF or SOURCE_ABSTRACT
    sections: list[Section]     # empty for SOURCE_ABSTRACT
    note: str | None = None     # why not the HTML (or not the full text at all)


def read(http, pacer, html_url: str, pdf_url: str) -> FullText:
    """Download and read one paper version, trying the sources in order (module docstring)."""
    from . import fulltext_html, fulltext_pdf

    notes = []
    try:
        got = download.get(http, pacer, html_url)
        if got.status != 200:
            raise PermanentError(f"no HTML (HTTP {got.status})")
        return FullText(SOURCE_HTML, fulltext_html.extract(got.body))
    except PermanentError as exc:
        notes.append(str(exc) if str(exc).startswith("no HTML") else f"HTML unusable: {exc}")
    try:
        got = download.get(http, pacer, pdf_url)
        if got.status != 200:
            raise PermanentError(f"no PDF (HTTP {got.status})")
        if not got.body.lstrip()[:5].startswith(b"%PDF"):
            raise PermanentError(f"the PDF link answered {got.content_type.split(';')[0] or 'something else'}, "
                                 "not a PDF")
        return FullText(SOURCE_PDF, fulltext_pdf.extract(got.body), "; ".join(notes))
    except PermanentError as exc:
        notes.append(str(exc))
    return FullText(SOURCE_ABSTRACT, [], "; ".join(notes))


def paper_text(rt, paper: Paper) -> FullText:
    """The paper version's text: from the database when it was read before, else from arXiv
    (then stored). Raises TransientError when arXiv did not answer."""
    with rt.session() as s:
        row = textcache.load(s, paper.id, paper.version)
        if row is not None:
            return FullText(row.source, textcache.sections_of(row), row.note)
    from shared.arxiv_pacing import make_pacer

    http = rt.memo("arxiv_http", lambda: download.make_client(rt.config.contact, rt.config.fetch.timeout_seconds))
    pacer = rt.memo("arxiv_pacer", lambda: make_pacer(rt.settings.redis_url, rt.config.fetch.min_interval_seconds))
    text = _cleaned(read(http, pacer, arxiv.html_url(paper.id, paper.version, rt.settings.arxiv_html_url),
                         arxiv.pdf_url(paper.id, paper.version, rt.settings.arxiv_pdf_url)))
    log.info("paper %sv%d: read from %s%s", paper.id, paper.version, text.source,
             f" ({text.note})" if text.note else "")
    textcache.store(rt, paper.id, paper.version, text.source, text.sections, text.note)
    return text


def _cleaned(text: FullText) -> FullText:
    """The text as it is stored and read: no control characters or escape sequences (a PDF's
    form feeds, whatever a page carries); the note on one line."""
    from shared.text import clean, one_line

    sections = [Section(one_line(s.title), s.kind, [(t, clean(x)) for t, x in s.blocks], s.level)
                for s in text.sections]
    return FullText(text.source, sections, one_line(text.note) or None if text.note else text.note)


def body(rt, paper: Paper, budget: int) -> tuple[str, str]:
    """(the text the model reads, its source): the paper's sections selected to fit `budget`
    tokens, the abstract first; or the abstract alone when no full text could be read."""
    from .sections import select

    text = paper_text(rt, paper)
    if text.source == SOURCE_ABSTRACT:
        return paper.abstract, SOURCE_ABSTRACT
    sections = text.sections
    if not any(s.kind == "abstract" and s.blocks for s in sections):
        # The PDF's abstract sits in its front matter (or inline, "Abstract—..."): use arXiv's.
        sections = [Section("Abstract", "abstract", [("p", paper.abstract)]), *sections]
    return select(sections, budget), text.source

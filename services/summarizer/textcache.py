"""Full texts kept in the database (table paper_texts), one per paper version.

A text is read from arXiv once and then serves every summary of that version: a task retried
after a provider error, a re-run of the day, a summary in another language or by another model
(the key is paper id + version only). A text read by older extraction code (EXTRACTOR differs)
counts as missing, so an improved extractor reads it again.
"""
from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError

from shared.models import PaperText

from .sections import Section, total_tokens

log = logging.getLogger(__name__)

EXTRACTOR = "1"  # bump when fulltext_html / fulltext_pdf / pdf_layout read papers differently


def load(s, paper_id: str, version: int) -> PaperText | None:
    """The stored text of this paper version, or None (never read, or read by older code)."""
    row = s.get(PaperText, (paper_id, version))
    return row if row is not None and row.extractor == EXTRACTOR else None


def sections_of(row: PaperText) -> list[Section]:
    return [Section.from_json(d) for d in row.sections or []]


def store(rt, paper_id: str, version: int, source: str, sections: list[Section], note: str | None) -> None:
    """Keep what was read (its own transaction). Another worker storing the same version at the
    same moment is fine: both read the same file, the first row stays."""
    values = dict(source=source, sections=[s.to_json() for s in sections], tokens=total_tokens(sections),
                  note=(note or None) and note[:1000], extractor=EXTRACTOR)
    try:
        with rt.session() as s:
            row = s.get(PaperText, (paper_id, version))
            if row is None:
                s.add(PaperText(paper_id=paper_id, version=version, **values))
            else:  # read by older code: replace
                for key, value in values.items():
                    setattr(row, key, value)
    except IntegrityError:
        log.info("paper %sv%d: text stored meanwhile by another worker", paper_id, version)

"""A paper as sections, and the part of it the model reads: section-aware selection in a token budget.

Both extractors (fulltext_html, fulltext_pdf) produce a list of `Section`s in document order, each
with a `kind` from its heading (`classify`) and its content as blocks: paragraphs ("p"), tables
("table": caption and rows), figure captions ("figure"), equations ("eq"). `select` keeps, in this
order of need, until the budget is spent:

    abstract > conclusion, limitations > results, experiments > introduction, method
      > discussion and unnamed body sections > background, related work > appendices

(a paper without a conclusion section concludes in its discussion, which then counts as one).

References, acknowledgements and front matter (title block, affiliations) are never sent. A tier
that does not fit whole shares what is left in proportion to its sections' sizes, and each
section keeps its tables and captions first, then its paragraphs from the start. So the results
are never cut to keep the related work, and a long paper loses its appendices first.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from shared.budget import estimate_tokens

KINDS = ("front", "abstract", "introduction", "background", "related", "method", "experiments", "results",
         "discussion", "limitations", "conclusion", "acknowledgements", "references", "appendix", "other")

# Lower tiers are kept first; None: never sent to the model.
TIER = {"abstract": 0, "conclusion": 1, "limitations": 1, "results": 2, "experiments": 2,
        "introduction": 3, "method": 3, "discussion": 4, "other": 4, "background": 5, "related": 5,
        "appendix": 6, "front": None, "references": None, "acknowledgements": None}

# Heading words -> kind, tried in order (the first match wins: "Experimental results" is results,
# "Related work" is related before "work" could mean anything else).
_RULES = [
    ("references", r"references|bibliography|works cited|literature cited"),
    ("acknowledgements", r"acknowledge?ments?|funding|author contributions?|competing interests"),
    ("appendix", r"appendi(x|ces)|supplementa(ry|l)|extended data"),
    ("abstract", r"abstract"),
    ("limitations", r"limitations?|threats to validity|broader impacts?|ethic(s|al)"),
    ("conclusion", r"conclu(sion|sions|ding)|summary|closing remarks|future work|outlook"),
    ("related", r"related (work|literature|research)|prior (work|art)|previous (work|studies)|"
                r"literature (review|survey)|state of the art"),
    ("results", r"results?|ablations?|findings|case stud(y|ies)"),
    ("results?", r"analysis|analyses|comparisons?|performance|effects?"),  # a subsection keeps its parent's
    ("experiments", r"experiment(s|al)?|evaluations?|benchmarks?|empirical|setup|settings|datasets?|"
                    r"implementation details"),
    ("introduction", r"introduction|motivation"),
    ("background", r"background|preliminar(y|ies)|notation|definitions"),
    ("method", r"methods?|methodology|approach(es)?|models?|architectures?|frameworks?|proposed|designs?|"
               r"algorithms?|systems?|implementations?|formulations?|techniques?|training|overview"),
    ("discussion", r"discussions?"),
]
_RULES_RE = [(kind, re.compile(rf"\b({words})\b", re.I)) for kind, words in _RULES]
# "1", "2.3", "IV", "IV-B", "A.", "A.1", "Appendix B" prefixes of a heading.
_NUMBER_RE = re.compile(r"^\s*(?:(?:\d+|[IVXLC]+|[A-Z])(?:[.\-–]\d+|[.\-–][A-Z])*\.?|§)\s+")


@dataclass
class Section:
    title: str
    kind: str
    blocks: list[tuple[str, str]] = field(default_factory=list)  # (type, text): p, table, figure, eq
    level: int = 1

    def to_json(self) -> dict:
        return {"title": self.title, "kind": self.kind, "level": self.level, "blocks": [list(b) for b in self.blocks]}

    @classmethod
    def from_json(cls, data: dict) -> "Section":
        return cls(title=str(data.get("title") or ""), kind=str(data.get("kind") or "other"),
                   blocks=[(str(t), str(x)) for t, x in data.get("blocks") or []], level=int(data.get("level") or 1))


def strip_number(title: str) -> str:
    """'IV-B Model architecture' -> 'Model architecture'; '5.2 Results' -> 'Results'."""
    return _NUMBER_RE.sub("", title.strip(), count=1).strip()


def classify(title: str, parent: str | None = None) -> str:
    """The kind of a section from its heading; a subsection whose heading says nothing known
    takes its parent's kind ("V-A Vodafone 5G network" under "Experimental Results" is results)."""
    text = strip_number(title)
    for kind, rx in _RULES_RE:
        if rx.search(text):
            if kind.endswith("?"):  # a weak word: "Statistical analysis" under Methods is method
                return parent if parent not in (None, "other") else kind[:-1]
            if parent in ("results", "experiments") and kind in ("method", "background", "other"):
                return parent  # "Algorithm latency" under "Experimental results" reports results
            return kind
    return parent or "other"


def section_text(section: Section, blocks: list[tuple[str, str]] | None = None, cut: bool = False) -> str:
    """How a section reads in the model's input: its heading, then its blocks."""
    body = "\n\n".join(text for _, text in (section.blocks if blocks is None else blocks))
    head = "#" * min(section.level + 1, 4) + " " + section.title if section.title else ""
    parts = [p for p in (head, body, "[…]" if cut else "") if p]
    return "\n".join(parts)


def tokens(section: Section) -> int:
    return estimate_tokens(section_text(section)) + 1


def usable(sections: list[Section]) -> list[Section]:
    """The sections that may be sent (not references, acknowledgements, front matter) and have text."""
    return [s for s in sections if TIER.get(s.kind, 4) is not None and s.blocks]


def total_tokens(sections: list[Section]) -> int:
    """Tokens of everything `select` could send: the input's size when the budget is no limit."""
    return sum(tokens(s) for s in usable(sections))


def tiers(sections: list[Section]) -> list[int | None]:
    """Each section's tier (TIER; None: never sent). Without a conclusion section, the discussion
    is where the paper concludes (Nature-style papers) and counts as one."""
    concluded = any(s.kind == "conclusion" and s.blocks for s in sections)
    return [TIER["conclusion"] if s.kind == "discussion" and not concluded else TIER.get(s.kind, 4)
            for s in sections]


def _trim(section: Section, budget: int) -> tuple[list[tuple[str, str]], bool]:
    """The blocks of `section` that fit `budget` tokens: tables and captions first (their numbers
    are the results), then paragraphs from the start; document order kept. (blocks, was_cut)."""
    from .llm import cut_to_tokens

    room = budget - estimate_tokens(section_text(section, [], cut=True)) - 2
    kept: dict[int, str] = {}
    first = [i for i, (t, _) in enumerate(section.blocks) if t in ("table", "figure")]
    rest = [i for i, (t, _) in enumerate(section.blocks) if t not in ("table", "figure")]
    for i in first + rest:
        kind, text = section.blocks[i]
        cost = estimate_tokens(text) + 1
        if cost <= room:
            kept[i], room = text, room - cost
        elif kind == "p" and room > 60:  # part of a paragraph still says something; then stop
            kept[i], room = cut_to_tokens(text, room - 3) + " …", 0
    blocks = [(section.blocks[i][0], kept[i]) for i in sorted(kept)]
    return blocks, len(kept) < len(section.blocks) or any(t.endswith(" …") for _, t in blocks)


def select(sections: list[Section], budget: int) -> str:
    """The text the model reads: the sections kept by need (module docstring), in document
    order, within `budget` tokens (estimate_tokens)."""
    from .llm import cut_to_tokens

    candidates = usable(sections)
    tier_of = dict(enumerate(tiers(candidates)))
    chosen: dict[int, tuple[list[tuple[str, str]], bool]] = {}
    left = budget
    for tier in sorted(set(tier_of.values())):
        members = [i for i in tier_of if tier_of[i] == tier]
        need = {i: tokens(candidates[i]) for i in members}
        if sum(need.values()) <= left:
            chosen.update((i, (candidates[i].blocks, False)) for i in members)
            left -= sum(need.values())
            continue
        # The tier does not fit: water-filling, smallest first, so short sections (a conclusion)
        # stay whole and the long ones share the rest equally.
        members.sort(key=need.get)
        for n, i in enumerate(members):
            share = left // (len(members) - n)
            if need[i] <= share:
                chosen[i], left = (candidates[i].blocks, False), left - need[i]
                continue
            blocks, cut = _trim(candidates[i], share)
            if blocks:
                chosen[i] = (blocks, cut)
                left -= estimate_tokens(section_text(candidates[i], blocks, cut)) + 1
        break
    text = "\n\n".join(section_text(candidates[i], blocks, cut) for i, (blocks, cut) in sorted(chosen.items()))
    return cut_to_tokens(text, budget)  # a guard: the shares above already fit

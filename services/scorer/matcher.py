"""The scorer's keyword matcher: precise, explainable and compiled once per config.

Matching rules (the original bot used case-insensitive substrings, so "RL" hit "world"):

* Words match on token boundaries. A token is a maximal run of letters/digits; hyphens, dashes,
  underscores and whitespace separate tokens, other punctuation is its own token. So "LLM"
  matches "LLM", "LLMs", "LLM-based", "(LLM)" but "RL" never matches "world", "URL", "overall".
* Inflection (of the LAST word of a keyword only): the word itself and word+s, +es, +ed, +ing;
  a word ending in "e" takes only +s and +d ("Decode": decodes, decoded); consonant+"y" also
  takes "ies" ("strategy": strategies). Nothing else: "decoder" and "decoding" are different
  words from "Decode", and "reviewer" is not "review" (but "reviews"/"reviewed" are). A user who
  wants another form adds it to `aliases`; synonyms are never guessed.
* Phrases and hyphenated keywords: words separated by spaces or hyphens in the keyword match any
  run of spaces, hyphens and line breaks in the text ("mixture of experts" = "mixture-of-\nexperts",
  "K-means" = "K means"). Punctuation is literal ("C++", "Q&A"; spaces around it are allowed).
* `case_sensitive: true` compares exact case (the inflection suffix stays lower case: "LLMs").
* Exclusions use the same rules; the first exclude term (config order) found wins.

Score (the original's scale): per keyword, weight x (1.0 if in title or abstract, +0.5 more if
in the title); + author_weight per followed author; the sum is multiplied by the weight of the
paper's primary category (exact category, else its archive, else 1). Interest similarity is
added by the caller (services/scorer/interests.py). Scores are rounded to 4 decimals.

Speed: a text is turned into a set of lower-case byte tokens with one C-level translate+split
(ASCII texts, i.e. nearly all arXiv abstracts), single-word keywords are a set intersection, and
only multi-token / case-sensitive keywords whose words all occur run their own small regex.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

from shared.config import Config, KeywordSpec
from shared.errors import ConfigError

_DASHES = "\\-\u2010-\u2015\u2212"
# Elements of a keyword: word runs, or single punctuation characters (not separators).
_ELEMENT_RE = re.compile(rf"[^\W_]+|[^\w\s{_DASHES}]")
_WORD_RE = re.compile(r"[^\W_]+")
_SEP = rf"[\s_{_DASHES}]"
# bytes.translate table: ASCII letters -> lower case, digits and non-ASCII bytes kept, rest -> space.
_ASCII_TABLE = bytes(
    c + 32 if 65 <= c <= 90 else c if (48 <= c <= 57 or 97 <= c <= 122 or c >= 128) else 32
    for c in range(256)
)


def tokens(text: str) -> frozenset[bytes]:
    """The set of lower-case word tokens of `text` (UTF-8 bytes), punctuation dropped."""
    if text.isascii():
        return frozenset(text.encode().translate(_ASCII_TABLE).split())
    # Non-ASCII: Unicode-aware word runs (and str.lower) so "Schrödinger" stays one token.
    return frozenset(w.encode() for w in _WORD_RE.findall(text.lower()))


def inflections(word: str) -> list[str]:
    """The forms a keyword's last word matches (see the module docstring), the word first."""
    lower = word.lower()
    if lower.endswith("e"):
        forms = [word, word + "s", word + "d"]
    else:
        forms = [word, word + "s", word + "es", word + "ed", word + "ing"]
        if len(lower) > 1 and lower.endswith("y") and lower[-2] not in "aeiou" and word[-1] == "y":
            forms.append(word[:-1] + "ies")
    return forms


@dataclass(frozen=True)
class _Checked:
    """A keyword form that needs its regex: several tokens, punctuation or exact case."""

    index: int
    required: frozenset[bytes]  # lower-case words that must all be tokens of the text
    last: frozenset[bytes] | None  # lower-case forms of the last word (one must be a token)
    regex: re.Pattern


def _compile_form(index: int, form: str, case_sensitive: bool):
    """Return ("simple", surfaces) for a plain word, else ("checked", _Checked)."""
    elements = _ELEMENT_RE.findall(form)
    if not any(_WORD_RE.fullmatch(e) for e in elements):
        raise ConfigError(f"keyword {form!r} has no letters or digits to match")
    is_word = [bool(_WORD_RE.fullmatch(e)) for e in elements]
    if len(elements) == 1 and not case_sensitive:
        return "simple", [f.lower().encode() for f in inflections(elements[0])]
    parts = [r"(?<![^\W_])" if is_word[0] else ""]
    for i, element in enumerate(elements):
        if i:
            # Two words need a separator between them (else they would be one token).
            parts.append(_SEP + ("+" if is_word[i - 1] and is_word[i] else "*"))
        if i == len(elements) - 1 and is_word[i]:
            forms = sorted(inflections(element), key=len, reverse=True)
            parts.append("(?:" + "|".join(map(re.escape, forms)) + r")(?![^\W_])")
        else:
            parts.append(re.escape(element))
    words = [e.lower().encode() for e, w in zip(elements, is_word) if w]
    last = None
    if is_word[-1]:
        last = frozenset(f.lower().encode() for f in inflections(elements[-1]))
        words = words[:-1]
    regex = re.compile("".join(parts), 0 if case_sensitive else re.IGNORECASE)
    return "checked", _Checked(index, frozenset(words), last, regex)


class _TermIndex:
    """Which of a list of keywords (with aliases) occur in a text; compiled once."""

    def __init__(self, specs: Sequence[KeywordSpec]):
        self.specs = list(specs)
        self._simple: dict[bytes, tuple[int, ...]] = {}
        # Checked forms are reached through one "trigger" token so most are never looked at:
        # the longest required word (long words are rarer than "of"), else each last-word form.
        self._triggers: dict[bytes, list[_Checked]] = {}
        for index, spec in enumerate(self.specs):
            for form in dict.fromkeys((spec.term, *spec.aliases)):
                kind, compiled = _compile_form(index, form, spec.case_sensitive)
                if kind == "simple":
                    for surface in compiled:
                        if index not in self._simple.get(surface, ()):
                            self._simple[surface] = self._simple.get(surface, ()) + (index,)
                else:
                    keys = [max(sorted(compiled.required), key=len)] if compiled.required else compiled.last
                    for key in keys:
                        self._triggers.setdefault(key, []).append(compiled)
        self._simple_keys = frozenset(self._simple)
        self._trigger_keys = frozenset(self._triggers)

    def find(self, text: str, toks: frozenset[bytes]) -> set[int]:
        """Indexes (into specs) of the keywords occurring in `text`, whose tokens are `toks`."""
        hits: set[int] = set()
        for surface in toks & self._simple_keys:
            hits.update(self._simple[surface])
        for trigger in toks & self._trigger_keys:
            for c in self._triggers[trigger]:
                if (c.index not in hits and c.required <= toks
                        and (c.last is None or not c.last.isdisjoint(toks)) and c.regex.search(text)):
                    hits.add(c.index)
        return hits


_TEX_ACCENT_RE = re.compile(r"\\[`'^\"~=.uvHckrbd]\s*\{?\s*\\?([A-Za-z])\s*\}?")
# TeX letters and Unicode letters that NFKD does not split into base + accent.
_TEX_LETTER_RE = re.compile(r"\\(ss|aa|AA|ae|AE|oe|OE|[lLoOij])(?![A-Za-z])")
_LETTERS = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ß": "ss",
                          "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ı": "i"})


def normalize_name(name: str) -> tuple[str, ...]:
    """Lower-case name parts without accents or affiliations: "Benjamin R\\'emy (LEMTA)",
    "Benjamin Rémy" and "benjamin remy" all give ("benjamin", "remy"); "Pawe{\\l}" = "Paweł"."""
    name = re.sub(r"\([^)]*\)", " ", name)  # arXiv puts affiliations in parentheses
    name = _TEX_ACCENT_RE.sub(r"\1", name)
    name = _TEX_LETTER_RE.sub(r"\1", name).replace("{", "").replace("}", "").translate(_LETTERS)
    name = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return tuple(re.findall(r"[^\W\d_]+", name.lower()))


def _same_person(followed: tuple[str, ...], author: tuple[str, ...]) -> bool:
    """Same last name and compatible first name: equal, or an initial of the other ("Y." ~ "Yann")."""
    if not followed or not author or followed[-1] != author[-1]:
        return False
    if len(followed) == 1 or len(author) == 1:
        return len(followed) == len(author)
    a, b = followed[0], author[0]
    return a == b or (len(a) == 1 and b.startswith(a)) or (len(b) == 1 and a.startswith(b))


@dataclass
class MatchResult:
    """Why a paper scored what it did. `details[i]["points"]` are before the category weight."""

    score: float
    matched: list[str] = field(default_factory=list)  # keyword terms (config order), then authors
    details: list[dict] = field(default_factory=list)  # {"term", "where": [...], "points"}
    excluded_by: str | None = None  # the first exclude term found, or None
    category_weight: float = 1.0


class Matcher:
    """Scores papers against keywords, exclusions, followed authors and category weights."""

    def __init__(self, keywords: Iterable[KeywordSpec | str], excludes: Iterable[KeywordSpec | str] = (),
                 authors: Iterable[str] = (), author_weight: float = 2.0,
                 category_weights: dict[str, float] | None = None):
        as_spec = lambda k: k if isinstance(k, KeywordSpec) else KeywordSpec(term=k)  # noqa: E731
        self.keywords = _TermIndex([as_spec(k) for k in keywords])
        self.excludes = _TermIndex([as_spec(k) for k in excludes])
        self.authors = [(a, normalize_name(a)) for a in authors if normalize_name(a)]
        self.author_weight = float(author_weight)
        self.category_weights = dict(category_weights or {})

    def score(self, title: str, abstract: str, authors: Sequence[str] = (),
              categories: Sequence[str] = ()) -> MatchResult:
        """Score one paper. Never raises for any strings; `categories[0]` is the primary one."""
        title, abstract = title or "", abstract or ""
        if isinstance(authors, str):  # one "A, B, C" string as in arXiv's RSS dc:creator
            authors = [a.strip() for a in authors.split(",")]
        if isinstance(categories, str):
            categories = [categories]
        t_toks, a_toks = tokens(title), tokens(abstract)
        in_title = self.keywords.find(title, t_toks)
        in_abstract = self.keywords.find(abstract, a_toks)
        result = MatchResult(score=0.0)
        total = 0.0
        for i in sorted(in_title | in_abstract):
            spec = self.keywords.specs[i]
            points = spec.weight * (1.5 if i in in_title else 1.0)
            where = (["title"] if i in in_title else []) + (["abstract"] if i in in_abstract else [])
            result.matched.append(spec.term)
            result.details.append({"term": spec.term, "where": where, "points": round(points, 4)})
            total += points
        if self.authors and authors:
            names = [normalize_name(a) for a in authors]
            for label, followed in self.authors:
                if any(_same_person(followed, n) for n in names):
                    result.matched.append(label)
                    result.details.append({"term": label, "where": ["authors"],
                                           "points": round(self.author_weight, 4)})
                    total += self.author_weight
        if self.excludes.specs:
            hits = self.excludes.find(title, t_toks) | self.excludes.find(abstract, a_toks)
            if hits:
                result.excluded_by = self.excludes.specs[min(hits)].term
        if categories and self.category_weights:
            primary = categories[0]
            result.category_weight = self.category_weights.get(
                primary, self.category_weights.get(primary.split(".")[0], 1.0))
        result.score = round(total * result.category_weight, 4)
        return result


def compile_matcher(config: Config) -> Matcher:
    """The Matcher for `config`, compiled once and cached by the scoring-relevant settings.

    Raises ConfigError (one line) for a keyword with nothing to match (e.g. "-").
    """
    return _cached(tuple(config.keyword_specs()), tuple(config.exclude_specs()), tuple(config.authors),
                   config.author_weight, tuple(sorted(config.category_weights.items())))


@lru_cache(maxsize=16)
def _cached(keywords, excludes, authors, author_weight, category_weights) -> Matcher:
    return Matcher(keywords, excludes, authors, author_weight, dict(category_weights))

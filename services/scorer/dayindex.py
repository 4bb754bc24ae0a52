"""The day's papers indexed once, so every profile is scored against the index, not the texts.

A community deployment has thousands of readers; re-running the matcher over every paper for
every profile is O(profiles x papers x terms). Instead the day's titles and abstracts are
tokenised once (matcher.tokens) into postings (token -> papers), authors are indexed by last
name, and a keyword form (matcher._compile_form: the same rules, so the same matches) is looked
up once per day however many profiles use it: a plain word is a union of postings, a phrase or
case-sensitive term runs its regex only on the papers that hold all of its words. A profile then
costs a few set operations per keyword (services/scorer/profile_scorer.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import KeywordSpec

from .matcher import _compile_form, normalize_name, tokens


@dataclass
class DayPaper:
    id: str
    title: str
    abstract: str
    authors: list[str]
    categories: list[str]   # primary first
    announce_type: str      # relative to the union of the profiles' categories
    version: int


@dataclass
class DayIndex:
    papers: list[DayPaper]
    # token -> the papers holding it, in paper order. Lists, not sets: a day has ~10k distinct
    # tokens, mostly in one or two papers, and a small set costs four times a small list.
    _title_post: dict[bytes, list[int]] = field(default_factory=dict)
    _abstract_post: dict[bytes, list[int]] = field(default_factory=dict)
    _last_names: dict[str, list[tuple[int, tuple[str, ...]]]] = field(default_factory=dict)
    _forms: dict[tuple[str, bool], tuple[frozenset[int], frozenset[int]]] = field(default_factory=dict)
    _terms: dict[KeywordSpec, tuple[frozenset[int], frozenset[int]]] = field(default_factory=dict)
    features: dict = field(default_factory=dict)  # per-paper features built on demand (interests)
    _eligible: dict = field(default_factory=dict)
    _by_category: dict | None = None
    _by_primary: dict | None = None
    _kind_sets: tuple = ()

    @classmethod
    def build(cls, papers: list[DayPaper]) -> "DayIndex":
        index = cls(papers)
        for i, p in enumerate(papers):
            for tok in tokens(p.title or ""):  # a frozenset: each paper once per token
                index._title_post.setdefault(tok, []).append(i)
            for tok in tokens(p.abstract or ""):
                index._abstract_post.setdefault(tok, []).append(i)
            for name in p.authors or ():
                parts = normalize_name(name)
                if parts:
                    index._last_names.setdefault(parts[-1], []).append((i, parts))
        return index

    def __len__(self) -> int:
        return len(self.papers)

    def term_hits(self, spec: KeywordSpec) -> tuple[frozenset[int], frozenset[int]]:
        """(papers whose title matches, papers whose abstract matches) the keyword or an alias."""
        hit = self._terms.get(spec)
        if hit is None:
            title: set[int] = set()
            abstract: set[int] = set()
            for form in dict.fromkeys((spec.term, *spec.aliases)):
                t, a = self.form_hits(form, spec.case_sensitive)
                title |= t
                abstract |= a
            hit = self._terms[spec] = (frozenset(title), frozenset(abstract))
        return hit

    def form_hits(self, form: str, case_sensitive: bool) -> tuple[frozenset[int], frozenset[int]]:
        key = (form, case_sensitive)
        hit = self._forms.get(key)
        if hit is None:
            kind, compiled = _compile_form(0, form, case_sensitive)
            if kind == "simple":
                hit = (self._union(self._title_post, compiled), self._union(self._abstract_post, compiled))
            else:
                hit = (self._checked(self._title_post, compiled, "title"),
                       self._checked(self._abstract_post, compiled, "abstract"))
            self._forms[key] = hit
        return hit

    @staticmethod
    def _union(post: dict[bytes, list[int]], surfaces) -> frozenset[int]:
        out: set[int] = set()
        for s in surfaces:
            out.update(post.get(s, ()))
        return frozenset(out)

    def _checked(self, post: dict[bytes, list[int]], c, field_name: str) -> frozenset[int]:
        """Papers holding every required word (and a last-word form), then the form's regex."""
        cands: set[int] | None = None
        for word in sorted(c.required, key=lambda w: len(post.get(w, ()))):
            found = post.get(word)
            if not found:
                return frozenset()
            cands = set(found) if cands is None else cands.intersection(found)
            if not cands:
                return frozenset()
        if c.last is not None:
            last = self._union(post, c.last)
            cands = set(last) if cands is None else cands & last
        return frozenset(i for i in (cands or ()) if c.regex.search(getattr(self.papers[i], field_name) or ""))

    def eligible(self, categories, types) -> tuple[frozenset[int], dict[int, str]]:
        """(papers relevant to `categories` whose announce type relative to them is in `types`,
        {paper: that type}), by set operations on category postings: shared.arxiv's relevant()
        and effective_type() for every paper at once (tests/test_scorer_index.py compares them).
        Computed once per day for each distinct (category set, types)."""
        key = (tuple(categories), tuple(types))
        hit = self._eligible.get(key)
        if hit is None:
            if self._by_category is None:
                self._index_categories()
            relevant_, primary_in = set(), set()
            for c in categories:
                c = c.lower()
                relevant_ |= self._by_category.get(c, set())
                primary_in |= self._by_primary.get(c, set())
            new, repl, cross = self._kind_sets
            sets = {"new": relevant_ & primary_in & new, "cross": relevant_ & (cross | (new - primary_in)),
                    "replace": relevant_ & primary_in & repl, "replace-cross": relevant_ & (repl - primary_in)}
            kinds = {i: kind for kind in types for i in sets.get(kind, ())}
            hit = self._eligible[key] = (frozenset(kinds), kinds)
        return hit

    def _index_categories(self) -> None:
        """Postings by category and by archive (a category also counts for its archive), for
        any listed category and for the primary one; and the papers by their kind of announcement."""
        by_cat: dict[str, set[int]] = {}
        by_primary: dict[str, set[int]] = {}
        new, repl, cross = set(), set(), set()
        for i, p in enumerate(self.papers):
            for n, c in enumerate(p.categories):
                c = c.lower()
                for key in {c, c.split(".", 1)[0]}:
                    by_cat.setdefault(key, set()).add(i)
                    if n == 0:
                        by_primary.setdefault(key, set()).add(i)
            kind = p.announce_type
            if kind == "cross":
                cross.add(i)
            elif kind in ("replace", "replace-cross") or (kind is None and p.version > 1):
                repl.add(i)
            else:
                new.add(i)
        self._by_category, self._by_primary, self._kind_sets = by_cat, by_primary, (new, repl, cross)

    def author_hits(self, followed: tuple[str, ...], same_person) -> frozenset[int]:
        """Papers with an author who is `followed` (normalised parts; matcher._same_person rules)."""
        if not followed:
            return frozenset()
        return frozenset(i for i, parts in self._last_names.get(followed[-1], ()) if same_person(followed, parts))

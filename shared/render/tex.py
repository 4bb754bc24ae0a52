"""TeX in arXiv metadata made readable text, for every rendered output (README, feeds, page).

arXiv titles, author names and abstracts are TeX source: `Kad{\\i}o\\u{g}lu`, `G\\'omez`, `50\\%`,
`$O(n^2)$`. `to_text(s)` turns them into Unicode text with pylatexenc (MIT): accents become
letters (Kadıoğlu, Gómez), escapes their character (50%), formatting macros their argument, and
inline math clean text (O(n²), ℝ³, x∈X; sub- and superscripts become Unicode ones when every
character has one, else `x_(i,1)`). `markdown_math(md)` does the same for the `$...$` math in an
LLM summary (Markdown: only math is touched, never code).

What arXiv text is, and pylatexenc alone gets wrong, is handled before it sees the text:
a bare `%` is a percent sign, not a comment; `&` and `#` are characters; `~` before a number
or after a space means "about"; an unpaired `$` is a dollar; `\\href{url}{text}` keeps its text
and `\\url{..}` its URL; an unknown macro keeps its name (`$\\Z^d$` -> Zᵈ). A string pylatexenc
still cannot parse falls back to a plain clean-up, so conversion never fails.

The result is text, not markup: each renderer escapes it as before. papers.json keeps the
original fields (it is the data, not a rendering). Results are cached per string: a digest's
papers are converted once per process, not once per response.
"""
from __future__ import annotations

import re
from functools import lru_cache

# Anything that may be TeX; most strings (plain titles, names) skip the parser entirely.
_TEXISH = re.compile(r"[\\$^_{}~]|--|``|''")
_MATH = re.compile(r"\$\$(?P<d>.+?)\$\$|(?<!\\)\$(?P<i>(?:\\.|[^$\\])+?)\$|\\\((?P<p>.+?)\\\)", re.S)
_HREF = re.compile(r"(?<!\\)\\href\s*\{([^{}]*)\}\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_URL = re.compile(r"(?<!\\)\\url\s*\{([^{}]*)\}")
_SPECIAL = re.compile(r"(?<!\\)([%&#])")
_TILDE_ABOUT = re.compile(r"(?:(?<=\s)|^)~(?=[\d\s.])|~(?=\s)")
_DOLLAR = re.compile(r"(?<!\\)\$")
_SCRIPT = re.compile(r"([\^_])\s*(\{((?:[^{}]|\{[^{}]*\})*)\}|\\[A-Za-z]+(?:\s*\{[^{}]*\})?|[^\s\\{}$])")
_CARET = "\ue002"
_PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)

SUPERSCRIPT = dict(zip("0123456789+-−=()niabcdefghjklmoprstuvwxyzABDEGHIJKLMNOPRTUVW",
                       "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿⁱᵃᵇᶜᵈᵉᶠᵍʰʲᵏˡᵐᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂ"))
SUBSCRIPT = dict(zip("0123456789+-−=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ"))
_SILENT = frozenset("rm it bf sf tt em sl sc up md cal mit boldmath displaystyle textstyle scriptstyle "
                    "scriptscriptstyle big Big bigg Bigg bigl bigr Bigl Bigr biggl biggr Biggl Biggr left right "
                    "middle nonumber notag label limits nolimits mathstrut strut noindent small tiny footnotesize "
                    "large Large normalsize require".split())
_SYMBOLS = {"ne": "≠", "colon": ":", "over": "/", "atop": " ", "eg": "e.g.", "ie": "i.e.", "etc": "etc.",
            "imath": "ı", "jmath": "ȷ"}
_MACRO_BEFORE_GROUP = re.compile(r"(?<!\\)\\([A-Za-z]+)(?=\s*\{(?!\}))")  # "{}" only ends a name
_PLAIN_SCRIPT = {"*": "*", "∗": "*", "′": "′", "'": "′", "″": "″", "†": "†", "‡": "‡", "∘": "°", "∞": "∞"}


def to_text(text: str | None) -> str:
    """arXiv TeX (title, author, abstract) as Unicode text; plain text comes back unchanged."""
    if not text or not _TEXISH.search(text):
        return text or ""
    return _convert(text)


def markdown_math(md: str | None) -> str:
    """The `$...$` / `\\(...\\)` math of Markdown text as clean text; code spans are left alone."""
    if not md or "$" not in md and "\\(" not in md:
        return md or ""
    parts = _CODE.split(md)
    for i in range(0, len(parts), 2):  # even parts are outside code
        parts[i] = _MATH.sub(lambda m: _math_text(_math_body(m)), parts[i])
    return "".join(parts)


@lru_cache(maxsize=1)
def _converter():
    from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec

    class _Converter(LatexNodes2Text):
        def macro_node_to_text(self, node):
            # An unknown macro keeps its name (pylatexenc would drop it): "$\Z^d$" -> "Zᵈ";
            # old font switches ({\it et al}) and spacing/sizing commands say nothing.
            name = node.macroname
            if self.latex_context.get_macro_spec(name) is None and name.isalpha():
                if name in _SILENT:
                    return ""
                return _SYMBOLS.get(name, name) + (" " if node.macro_post_space else "")
            return super().macro_node_to_text(node)

    del MacroTextSpec
    return _Converter(math_mode="text", strict_latex_spaces=False)


def _latex(source: str) -> str:
    converter = _converter()

    def formatting(m: re.Match) -> str:
        # An unknown macro before a group (\mbox{..}, \textsf{..}, \bm{..}) formats it: keep the group.
        return "" if converter.latex_context.get_macro_spec(m.group(1)) is None else m.group(0)

    return converter.latex_to_text(_MACRO_BEFORE_GROUP.sub(formatting, source))


def _math_body(m: re.Match) -> str:
    return m.group("d") or m.group("i") or m.group("p") or ""


@lru_cache(maxsize=4096)
def _math_text(body: str) -> str:
    """One math expression as text: scripts first (while the braces still group them)."""
    try:
        return _latex("$" + _scripts(_SPECIAL.sub(r"\\\1", body)) + "$").strip().replace(_CARET, "^")
    except Exception:  # pylatexenc's parser gave up: a plain clean-up instead
        return _fallback(body)


def _scripts(body: str) -> str:
    def one(m: re.Match) -> str:
        inner = m.group(3) if m.group(3) is not None else m.group(2)
        text = _math_text(inner).strip() if re.search(r"[\\{^_]", inner) else inner.strip()
        table = SUPERSCRIPT if m.group(1) == "^" else SUBSCRIPT
        if text in _PLAIN_SCRIPT:
            out = _PLAIN_SCRIPT[text]
        elif text and all(c in table for c in text):
            out = "".join(table[c] for c in text)
        else:  # no Unicode form: the caret or underscore as a character, the group in parentheses
            mark = _CARET if m.group(1) == "^" else r"\_"  # pylatexenc has no plain "^"
            grouped = len(text) <= 1 or (text.startswith("(") and text.endswith(")"))
            out = mark + (text if grouped else f"({text})")
        # "{}" ends a preceding macro name ("\\sum{}ᵢ", not the unknown macro "\\sumᵢ").
        return "{}" + out


    return _SCRIPT.sub(one, body)


def _protect(text: str, saved: list[str]) -> str:
    def keep(value: str) -> str:
        saved.append(value)
        return f"\ue000{len(saved) - 1}\ue001"

    # \href{url}{here}: "here (url)", so the address a reader needs is not lost with the link.
    text = _HREF.sub(lambda m: m.group(2) if m.group(2).strip() == m.group(1).strip()
                     else f"{m.group(2)} ({keep(m.group(1))})", text)
    return _URL.sub(lambda m: keep(m.group(1)), text)


def _prepare_text(segment: str) -> str:
    segment = _SPECIAL.sub(r"\\\1", segment)
    segment = _TILDE_ABOUT.sub(r"\\textasciitilde{}", segment)
    return _DOLLAR.sub(r"\\$", segment)  # what is left is an unpaired dollar: a dollar sign


@lru_cache(maxsize=8192)
def _convert(text: str) -> str:
    saved: list[str] = []
    text = _protect(text, saved)
    pieces, last = [], 0
    for m in _MATH.finditer(text):
        pieces.append(("text", text[last:m.start()]))
        pieces.append(("math", _math_body(m)))
        last = m.end()
    pieces.append(("text", text[last:]))
    try:
        source = "".join(_prepare_text(p) if kind == "text" else "$" + _scripts(_SPECIAL.sub(r"\\\1", p)) + "$"
                         for kind, p in pieces)
        out = _latex(source)
    except Exception:  # convert piece by piece so one bad construct spoils only itself
        out = "".join(_text_piece(p) if kind == "text" else _math_text(p) for kind, p in pieces)
    out = re.sub(r"[ \t\xa0]{2,}", " ", out.replace("\xa0", " ")).replace(_CARET, "^")
    out = _PLACEHOLDER.sub(lambda m: saved[int(m.group(1))] if int(m.group(1)) < len(saved) else "", out)
    return re.sub("[\ue000-\ue002]", "", out)  # a placeholder the parser split: never shown


def _text_piece(segment: str) -> str:
    try:
        return _latex(_prepare_text(segment))
    except Exception:
        return _fallback(segment)


def _fallback(text: str) -> str:
    """No parser: drop macro backslashes, braces and dollars; keep the words."""
    text = re.sub(r"\\([%&#$_{}])", r"\1", text)
    text = re.sub(r"\\([A-Za-z]+)\s*", r"\1 ", text)
    return re.sub(r"[{}$\\]", "", text).strip()

"""Turn the model's answer into {tldr, sections, raw}, whatever shape the answer came in.

JSON mode is a request, not a guarantee: models answer with clean JSON, JSON in ```json
fences, JSON wrapped in prose, or plain Markdown with headings (English or Chinese, numbered
or not). `parse_summary` tries JSON first and falls back to Markdown headings. The text stays
text: nothing is rendered or sanitised here (the renderers do that at output time).
"""
from __future__ import annotations

import json
import re

from shared.errors import PermanentError
from shared.text import clean

SECTION_KEYS = ("contributions", "method", "results", "conclusions")
SECTION_CAP = 8000          # characters kept per section / TL;DR
RAW_CAP_BYTES = 64 * 1024   # UTF-8 bytes of the raw answer kept
PARSE_CAP = 1_000_000        # characters of an answer looked at
_MAX_JSON_STARTS = 50       # "{" positions tried when JSON is buried in prose
_SECTION_LINE_MAX = SECTION_CAP
_HEADING_MAX = 300          # characters: a longer line is text, not a heading

# Normalised JSON key (lower case, letters/digits only) -> our key.
_KEY_ALIASES = {
    "tldr": "tldr", "tl;dr": "tldr", "summary": "tldr", "onesentencesummary": "tldr",
    "contributions": "contributions", "contribution": "contributions", "maincontributions": "contributions",
    "novelty": "contributions", "contributionsandnovelty": "contributions",
    "method": "method", "methods": "method", "methodology": "method", "approach": "method",
    "experimentalsetup": "method", "methodandexperimentalsetup": "method", "setup": "method",
    "results": "results", "result": "results", "mainresults": "results", "findings": "results",
    "conclusions": "conclusions", "conclusion": "conclusions", "limitations": "conclusions",
    "conclusionsandlimitations": "conclusions",
}

# Heading text -> section, checked in this order (the first match wins): "实验结果" is results,
# "方法与实验设置" is method, "Conclusions and limitations" is conclusions.
_HEADING_RULES = (
    ("tldr", re.compile(r"tl\s*;?\s*dr|一句话|one[- ]sentence|in one sentence", re.I)),
    ("contributions", re.compile(r"contribution|novelty|innovation|贡献|创新", re.I)),
    ("conclusions", re.compile(r"conclusion|limitation|future work|结论|局限|不足|未来", re.I)),
    ("results", re.compile(r"result|finding|evaluation|结果|性能表现", re.I)),
    ("method", re.compile(r"method|approach|setup|set-up|experiment|dataset|baseline|方法|实验|设置|数据集", re.I)),
)

_JSON_CONTROL = re.compile(r"\\u00(?:[01][0-9a-fA-F]|7[fF]|[89][0-9a-fA-F])")
_FENCE_RE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)```", re.S)
_MD_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_BOLD_LINE_RE = re.compile(r"^\s*(?:\d+[.)、]\s*)?\*\*(.+?)\*\*\s*[:：]?\s*$")
_NUMBERED_RE = re.compile(r"^\s*(?:\d+|[一二三四五])[.)、．]\s*(.{1,60})$")
_INLINE_TLDR_RE = re.compile(r"^\s*(?:\*\*)?\s*TL\s*;?\s*DR\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*(.+)$", re.I)


def parse_summary(text: str) -> dict:
    """{"tldr": str|None, "sections": {contributions, method, results, conclusions: str|None},
    "raw": the answer (capped at 64 KB)}. Each value is capped at 8,000 characters; a section
    the answer lacks is None. Raises PermanentError("empty answer") for an empty/blank answer."""
    if text is None or not text.strip():
        raise PermanentError("empty answer")
    # Control characters and terminal sequences go, raw and as JSON escapes ("\u001b[31m"):
    # whoever decodes the stored answer again must not get them back. The values parsed from the
    # JSON are cleaned again after decoding (_clean).
    text = clean(_JSON_CONTROL.sub(lambda m: chr(int(m.group()[2:], 16)), text)).strip()
    # Parse the whole answer (bounded), cap afterwards: a huge JSON answer cut first would
    # no longer be JSON.
    work = text[:PARSE_CAP]
    found = _from_json(work) or _from_markdown(work)
    sections = {key: _clean(found.get(key)) for key in SECTION_KEYS}
    return {"tldr": _clean(found.get("tldr")), "sections": sections,
            "raw": _cap_bytes(text, RAW_CAP_BYTES)}


def _cap_bytes(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def _clean(value) -> str | None:
    if value is None:
        return None
    # The values come out of the answer's JSON, where "\u001b" is an escape character again:
    # control characters and terminal sequences are removed here, after decoding.
    text = clean(value).strip()
    if not text or text.lower() in ("null", "none", "n/a"):
        return None
    if len(text) > SECTION_CAP:
        text = text[:SECTION_CAP - 1].rstrip() + "…"
    return text


def _as_text(value) -> str | None:
    """A JSON value as Markdown text: lists become bullets, objects "key: value" lines."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(f"- {_as_text(v) or ''}".rstrip() for v in value)
    if isinstance(value, dict):
        return "\n".join(f"- {k}: {_as_text(v) or ''}".rstrip() for k, v in value.items())
    return str(value)


def _mapped(obj: dict) -> dict:
    """Our keys found in a decoded JSON object (one level of nesting such as
    {"summary": {...}} or {"sections": {...}} is looked into)."""
    out: dict = {}
    for key, value in obj.items():
        norm = re.sub(r"[^a-z0-9;]", "", str(key).lower())
        if isinstance(value, dict) and norm in ("sections", "summary", "result", "paper"):
            for k, v in _mapped(value).items():
                out.setdefault(k, v)
            continue
        ours = _KEY_ALIASES.get(norm) or _KEY_ALIASES.get(norm.replace(";", ""))
        if ours and ours not in out:
            out[ours] = _as_text(value)
    return out


def _from_json(text: str) -> dict | None:
    """Our keys from the first JSON object that has any: fenced blocks first, then the whole
    answer, then objects starting at successive "{" positions (JSON wrapped in prose)."""
    candidates = [m.group(1) for m in _FENCE_RE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for cand in candidates:
        cand = cand.strip()
        for obj in _objects_in(cand, decoder):
            found = _mapped(obj)
            if any(found.values()):
                return found
    return None


def _objects_in(text: str, decoder: json.JSONDecoder):
    start = text.find("{")
    tries = 0
    while start != -1 and tries < _MAX_JSON_STARTS:
        tries += 1
        try:
            obj, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            start = text.find("{", start + 1)
            continue
        if isinstance(obj, dict):
            yield obj
        start = text.find("{", end)


def _classify(heading: str) -> str | None:
    title = heading.strip().strip("*_ ").strip()
    for key, rule in _HEADING_RULES:
        if rule.search(title):
            return key
    return None


def _heading_of(line: str) -> tuple[int, str] | None:
    """(level, heading text) if `line` looks like a section heading: a Markdown heading (level =
    number of #), a line that is only bold text (level 7), or a short numbered line naming a
    section such as "1. 主要贡献" (level 8). Long lines are never headings (and are not given
    to the backtracking regexes)."""
    if len(line) > _HEADING_MAX:
        return None
    m = _MD_HEADING_RE.match(line)
    if m:
        return len(line.lstrip()) - len(line.lstrip().lstrip("#")), m.group(1)
    m = _BOLD_LINE_RE.match(line)
    if m:
        return 7, m.group(1)
    m = _NUMBERED_RE.match(line)
    if m and _classify(m.group(1)) and len(m.group(1)) <= 40 and not m.group(1).rstrip().endswith("。"):
        return 8, m.group(1)
    return None


def _from_markdown(text: str) -> dict:
    """Sections split at recognised headings of the outermost level any section heading uses
    ("## 1. Contributions" makes "### Baselines" a sub-heading that stays inside its section).
    Text before the first section heading is dropped (it is usually the paper's title). A
    TL;DR heading or "TL;DR: ..." line is taken at any level, wherever it is."""
    lines = text.splitlines()
    headings = {}
    for i, line in enumerate(lines):
        found = _heading_of(line)
        key = _classify(found[1]) if found else None
        if key:
            headings[i] = (found[0], key)
    levels = [lvl for lvl, key in headings.values() if key != "tldr"]
    section_level = min(levels) if levels else 0
    out: dict[str, list[str]] = {}
    current: str | None = None
    for i, line in enumerate(lines):
        inline = _INLINE_TLDR_RE.match(line[:_SECTION_LINE_MAX])
        if inline and "tldr" not in out:
            out["tldr"] = [inline.group(1).strip().strip("*").strip()]
            current = None
            continue
        level, key = headings.get(i, (99, None))
        if key and key not in out and (key == "tldr" or level <= section_level):
            current = key
            out[key] = []
            continue
        if current is not None:
            out[current].append(line)
    return {key: "\n".join(body).strip() for key, body in out.items()}

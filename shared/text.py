"""Text that came from outside (arXiv, the LLM provider, a mail or chat server) made inert.

`clean(text)` is applied at the boundaries, before anything external is stored or logged:
- terminal escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ST`, any other
  `ESC x`, and the 8-bit CSI/OSC forms U+009B/U+009D) are removed whole, so no trace of a
  colour code or a window-title command is left to reach a terminal;
- every other control character (Unicode category Cc: C0, DEL and C1) is removed, except tab
  and newline, which `keep_newlines=False` turns into spaces too; CR is dropped (CRLF -> LF).
`one_line(text, cap)` is clean() with whitespace collapsed into one line, cut at `cap`.
`scrub_secrets(text, *secrets)` hides the given secrets and anything key-like (sk-..., Bearer
...): used on every provider message before it reaches a log. Nothing here ever raises for a
str; None becomes "".
"""
from __future__ import annotations

import re

# ESC-introduced sequences first (so their parameters go with them), then lone control characters.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"            # CSI: parameters, intermediates, final byte
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC: up to BEL or ST
    r"|\x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?"      # DCS/SOS/PM/APC strings
    r"|\x1b[ -/]*[0-~]?"                             # any other escape (charset, keypad, ...)
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS_AND_NL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Provider keys and bearer tokens, whatever the provider echoes back.
_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|ak|key)-[A-Za-z0-9_\-*]{6,}|\bBearer\s+\S+|\b[A-Za-z0-9_\-]{32,}\b", re.I)


def has_controls(text: str) -> bool:
    """True when clean() would change `text` (apart from CR)."""
    return bool(text) and _CONTROLS.search(text.replace("\r\n", "\n")) is not None


def clean(text: str | None, keep_newlines: bool = True) -> str:
    """`text` without escape sequences or control characters (see the module docstring)."""
    if not text:
        return ""
    text = str(text)
    if text.isprintable():  # the common case: nothing to do (newlines and tabs are not printable)
        return text
    if "\x1b" in text or "\x9b" in text or "\x9d" in text:
        text = _ESCAPES.sub("", text)
    text = text.replace("\r\n", "\n")
    if keep_newlines:
        return _CONTROLS.sub("", text.replace("\r", ""))
    return _CONTROLS_AND_NL.sub(lambda m: " " if m.group() in "\t\n" else "", text.replace("\r", ""))


def one_line(text: str | None, cap: int | None = None) -> str:
    """clean() text on one line (runs of whitespace become one space), at most `cap` characters."""
    text = " ".join(clean(text, keep_newlines=False).split())
    if cap is not None and len(text) > cap:
        text = text[:max(cap - 1, 0)] + "…"
    return text


def scrub_secrets(text: str, *secrets: str | None) -> str:
    """`text` with each non-empty secret and anything key-like replaced by ***."""
    for secret in secrets:
        if secret and secret.strip():
            text = text.replace(secret.strip(), "***")
            # A provider may echo a cut or quoted part of the key: hide any long-enough piece of it.
            s = secret.strip()
            if len(s) >= 16:
                for i in range(0, len(s) - 11):
                    piece = s[i:i + 12]
                    if piece in text:
                        text = text.replace(piece, "***")
    return _KEYLIKE.sub("***", text)

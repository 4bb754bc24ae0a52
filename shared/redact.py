"""Secrets out of everything we print: one masking rule for every URL, wherever it is shown.

`mask_url(url)` is the only form in which a configured URL (DATABASE_URL, BROKER_URL,
ARXIV_RSS_URL, SMTP_URL, a git remote, a logged request path...) may reach a terminal, a log or a
response. It guarantees, for any string, well-formed or not:

- the password of the userinfo becomes "***" ("user:***@host"); a lone user name becomes "***"
  (tokens go there: https://TOKEN@github.com). A string without a scheme ("user:pw@host/db", a
  URL someone forgot the "postgresql://" of) is masked by the same rule;
- the value of every query (and fragment) parameter whose name looks secret (password, passwd,
  pwd, token, key, secret, sig, auth, credential, session, in any case, inside longer names such
  as api_key or X-Amz-Signature) becomes "***";
- everything else is kept, so the line still says which host and database it is about.

`redact_text(text)` applies mask_url to every URL inside a free text (an exception message, a log
line), then replaces the literal secret values of the URLs configured in the environment
(`SECRET_URL_VARS`), decoded or not, wherever they appear; `LogRedactor` does that to every log
record. The CLI prints its error lines through redact_text.
"""
from __future__ import annotations

import logging
import os
import re
from urllib.parse import unquote

MASK = "***"
SECRET_NAME = re.compile(r"pass|pwd|token|key|secret|sig|auth|credential|session", re.I)
# The environment variables that hold URLs which may carry credentials.
SECRET_URL_VARS = ("DATABASE_URL", "BROKER_URL", "REDIS_URL", "ARXIV_RSS_URL", "ARXIV_API_URL",
                   "ARXIV_HTML_URL", "ARXIV_PDF_URL", "LLM_BASE_URL", "OPENAI_BASE_URL", "SMTP_URL",
                   "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
# A URL inside free text: scheme://... up to whitespace or a quote, not counting the punctuation
# that closes a sentence or a parenthesis around it ("(postgresql://...): refused").
# Quotes may sit inside (a raw password); one closing the URL is not part of it.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s<>`]*[^\s'\"<>`).,;:!?\]]")
# "user:password@host" without a scheme (a URL someone forgot the scheme of), inside free text.
_USERINFO_IN_TEXT = re.compile(r"[^\s'\"<>`(]*:[^\s<>`]*@[A-Za-z0-9.\[\]:_-]*(?:[/?#][^\s<>`]*)?"
                               r"[^\s'\"<>`).,;:!?\]]")
MIN_LITERAL = 4  # shorter secret values are not scrubbed as literals (they would eat ordinary words)


def _split(url: str) -> tuple[str, str | None, str]:
    """(prefix up to and including "://" or "", userinfo or None, the rest after "@")."""
    scheme, sep, rest = url.partition("://")
    prefix = scheme + sep if sep else ""
    if not sep:
        rest = url
    at = rest.rfind("@")
    if at < 0:
        return prefix, None, rest
    head = rest[:at]
    colon, slash = head.find(":"), head.find("/")
    # An "@" after the path began (".../x?mail=a@b") is not userinfo: a "/" before any ":".
    if slash >= 0 and (colon < 0 or slash < colon):
        return prefix, None, rest
    return prefix, head, rest[at + 1:]


def _mask_params(text: str) -> str:
    """name=value pairs separated by & or ;: secret-looking names get their value masked."""
    def one(pair: str) -> str:
        name, eq, _ = pair.partition("=")
        return f"{name}={MASK}" if eq and SECRET_NAME.search(unquote(name)) else pair
    return re.sub(r"[^&;]+", lambda m: one(m.group(0)), text)


def mask_url(url: str | None) -> str:
    """`url` as it may be shown (module docstring): credentials and secret parameters "***"."""
    if not url:
        return ""
    url = str(url)
    prefix, userinfo, rest = _split(url)
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:{MASK}@{rest}" if colon else f"{MASK}@{rest}"
    before, hash_, fragment = rest.partition("#")
    base, q, query = before.partition("?")
    if q:
        before = f"{base}?{_mask_params(query)}"
    if hash_:
        fragment = _mask_params(fragment)
    return prefix + before + hash_ + fragment


def url_secrets(url: str | None) -> set[str]:
    """The secret values inside `url` (password, secret parameters), raw and percent-decoded."""
    if not url:
        return set()
    found = set()
    prefix, userinfo, rest = _split(str(url))
    if userinfo is not None:
        user, colon, password = userinfo.partition(":")
        found.add(password if colon else user)
    for part in re.split(r"[?#]", rest)[1:]:
        for pair in re.split(r"[&;]", part):
            name, eq, value = pair.partition("=")
            if eq and SECRET_NAME.search(unquote(name)):
                found.add(value)
    return {v for s in found for v in (s, unquote(s)) if len(v) >= MIN_LITERAL}


def env_secrets(env=None) -> set[str]:
    """The secret values of the URLs configured in the environment (SECRET_URL_VARS)."""
    env = os.environ if env is None else env
    return {s for name in SECRET_URL_VARS for s in url_secrets(env.get(name))}


def redact_text(text: str, secrets: set[str] | None = None) -> str:
    """`text` with every URL in it masked and every known secret value replaced by "***"
    (`secrets` defaults to env_secrets())."""
    text = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), str(text))
    text = _USERINFO_IN_TEXT.sub(lambda m: m.group(0) if MASK in m.group(0) else mask_url(m.group(0)), text)
    for secret in sorted(env_secrets() if secrets is None else secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class LogRedactor(logging.Filter):
    """A handler filter: the record's final message (and its traceback text) passed through
    redact_text, so no log line carries a configured credential."""

    def __init__(self):
        super().__init__()
        self.secrets = env_secrets()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let logging report it as usual
            return True
        clean = redact_text(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, self.secrets)
        return True

"""SMTP_URL: where mail goes (docs/DESIGN.md "Delivery"), parsed once and never shown whole.

    smtp://[user:password@]host[:port]     port 25 by default; STARTTLS whenever the server offers it
    smtps://[user:password@]host[:port]    TLS from the first byte, port 465 by default

User and password are percent-decoded (a "@" in a password is written %40). `mask_url()` (shared/redact.py, the
one rule for every URL) is the only form of the URL that may be printed or logged: the password
(or a lone user name, where tokens go) becomes "***".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from .errors import ConfigError
from .redact import mask_url  # noqa: F401  (the one masking rule; imported from here too)

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str          # smtp | smtps
    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def implicit_tls(self) -> bool:
        return self.scheme == "smtps"

    @property
    def loopback(self) -> bool:
        return self.host in ("localhost", "127.0.0.1", "::1")


def parse_smtp_url(url: str) -> SmtpTarget:
    """The target of `url`; ConfigError (one line, the URL masked) when it is not usable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ConfigError(f"SMTP_URL: {mask_url(url)!r} has a bad port") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(f"SMTP_URL: {mask_url(url)!r} must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ConfigError(f"SMTP_URL: {mask_url(url)!r} names no host")
    if parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"SMTP_URL: {mask_url(url)!r}: expected smtp[s]://[user:password@]host[:port] only")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return SmtpTarget(scheme, parts.hostname, port or DEFAULT_PORTS[scheme], user, password)

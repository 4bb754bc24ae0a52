"""Sending mail over SMTP (the standard library's smtplib) and telling what a failure means.

One connection serves a batch of recipients. smtp:// upgrades with STARTTLS whenever the server
offers it; a password is never sent over a connection without TLS, except to this machine.
smtps:// is TLS from the first byte. Certificates are verified (the system's CAs, or the file
SSL_CERT_FILE names).

Failures: a 4xx reply, a dropped connection or a timeout is transient (retried); a 5xx reply
for a recipient or for the message is permanent for that recipient; a refused sender or a
failed login is permanent for every recipient of the batch (`ChannelBroken`). A transient
failure of the connection itself (`ChannelDown`) stops the batch: the rest stays pending.
"""
from __future__ import annotations

import smtplib
import socket
import ssl

from shared.errors import PermanentError, TransientError, first_line
from shared.smtp_url import SmtpTarget, mask_url, parse_smtp_url


class ChannelDown(TransientError):
    """The server cannot be reached or dropped us: no recipient of the batch can be served now."""


class ChannelBroken(PermanentError):
    """A problem with the channel itself (login, sender refused): every recipient fails alike."""


def _code_error(code: int, what: str, whole: bool = False) -> Exception:
    if 400 <= code < 500:
        return (ChannelDown if whole else TransientError)(f"{what} (SMTP {code}, temporary)")
    return (ChannelBroken if whole else PermanentError)(f"{what} (SMTP {code})")


def _reply(resp) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp or "")
    return " ".join(text.split())[:200]


class SmtpSender:
    """`send(sender, recipient, message_bytes)`, raising TransientError/PermanentError (above)."""

    def __init__(self, smtp_url: str | None, timeout: float):
        if not smtp_url:
            raise ChannelBroken("SMTP_URL is not set: e-mail delivery needs smtp[s]://host[:port]")
        self.target: SmtpTarget = parse_smtp_url(smtp_url)
        self.where = mask_url(smtp_url)
        self.timeout = timeout
        self.conn: smtplib.SMTP | None = None
        self.broken: Exception | None = None

    def __enter__(self) -> "SmtpSender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                self.conn.close()
            self.conn = None

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        context = ssl.create_default_context()
        try:
            if t.implicit_tls:
                conn = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=context)
            else:
                conn = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
            conn.ehlo()
            tls = t.implicit_tls
            if not tls and conn.has_extn("starttls"):
                conn.starttls(context=context)
                conn.ehlo()
                tls = True
            if t.user:
                if not tls and not t.loopback:
                    conn.close()
                    raise ChannelBroken(f"{self.where} offers no STARTTLS: the password is not sent in clear "
                                        "(use smtps:// or a server with STARTTLS)")
                conn.login(t.user, t.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise ChannelBroken(f"SMTP login to {self.where} refused: {_reply(exc.smtp_error)} "
                                f"(SMTP {exc.smtp_code})") from None
        except smtplib.SMTPNotSupportedError as exc:  # e.g. no AUTH offered: the URL asks for a login
            raise ChannelBroken(f"{self.where}: {first_line(exc)}") from None
        except smtplib.SMTPResponseException as exc:
            raise _code_error(exc.smtp_code, f"{self.where} refused the connection: {_reply(exc.smtp_error)}",
                              whole=True) from None
        except ssl.SSLCertVerificationError as exc:
            raise ChannelBroken(f"TLS certificate of {self.where} not trusted: {exc.verify_message}") from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, unreachable, timeout, TLS handshake
            raise ChannelDown(f"cannot reach the mail server {self.where}: {first_line(exc)}") from None
        return conn

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        """Returns when the server accepted the message for `recipient` (its 250 reply to DATA)."""
        if self.broken is not None:
            raise self.broken
        try:
            if self.conn is None:
                self.conn = self._connect()
            self.conn.sendmail(sender, [recipient], message)
        except ChannelBroken as exc:
            self.broken = exc
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            code, resp = exc.recipients.get(recipient, (550, b"refused"))
            raise _code_error(code, f"{recipient} refused: {_reply(resp)}") from None
        except smtplib.SMTPSenderRefused as exc:
            err = _code_error(exc.smtp_code, f"sender {sender} refused: {_reply(exc.smtp_error)}", whole=True)
            if isinstance(err, ChannelBroken):
                self.broken = err
            else:
                self._drop()
            raise err from None
        except smtplib.SMTPDataError as exc:
            raise _code_error(exc.smtp_code, f"message to {recipient} refused: {_reply(exc.smtp_error)}") from None
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise _code_error(exc.smtp_code, f"{self.where}: {_reply(exc.smtp_error)}", whole=True) from None
        except (smtplib.SMTPServerDisconnected, socket.timeout, OSError) as exc:
            # Unknown whether the server accepted it (a reply lost on the way): the documented
            # window. The retry carries the same Message-ID.
            self._drop()
            raise ChannelDown(f"mail server {self.where} dropped the connection: {first_line(exc)}") from None

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

"""A local SMTP server for tests and benchmarks (aiosmtpd, on a real socket) that records what it
accepted.

    with SmtpStandin() as smtp:                     # 127.0.0.1, a free port
        url = smtp.url                              # smtp://127.0.0.1:PORT
        ... smtp.messages                           # [(mail_from, rcpt, email.message.Message)]

Options: `tls="starttls"|"implicit"` with `cert`/`key` files (make_certificate), `auth=(user,
password)` (AUTH PLAIN/LOGIN), `refuse={address: "550 ..."|"450 ..."}` (RCPT replies),
`data_reply={address: "451 ..."}` (the reply to DATA), `hold={address}`: the DATA of a message
to that address is not answered until `release()` (the test can kill the client meanwhile;
`holding` is set while a message waits); a message whose client went away before the 250 reply
is not accepted (aiosmtpd cancels the handler), and counted in `dropped`. `count_only=True`
keeps counts, not messages (benchmarks).
"""
from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import subprocess
import threading
from collections import Counter
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (openssl); (cert, key) paths. A client
    trusts it with SSL_CERT_FILE=<cert>."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class _Handler:
    def __init__(self, standin: "SmtpStandin"):
        self.s = standin

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.s.refuse.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        s = self.s
        rcpts = list(envelope.rcpt_tos)
        for rcpt in rcpts:
            if rcpt in s.data_reply:
                return s.data_reply[rcpt]
        if any(r in s.hold for r in rcpts):
            s.holding.set()
            try:
                while not s._released.is_set():
                    await asyncio.sleep(0.02)
            except asyncio.CancelledError:
                with s.lock:
                    s.dropped += 1
                raise
        with s.lock:
            for rcpt in rcpts:
                s.counts[rcpt] += 1
            s.total += 1
            if not s.count_only:
                msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                               policy=email.policy.default)
                s.messages.extend((envelope.mail_from, rcpt, msg) for rcpt in rcpts)
                s.raw.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class SmtpStandin:
    def __init__(self, tls: str | None = None, cert: Path | None = None, key: Path | None = None,
                 auth: tuple[str, str] | None = None, refuse: dict | None = None, data_reply: dict | None = None,
                 hold=(), count_only: bool = False, port: int | None = None, host: str = "127.0.0.1"):
        self.tls, self.auth = tls, auth
        self.refuse, self.data_reply = dict(refuse or {}), dict(data_reply or {})
        self.hold = set(hold)
        self.count_only = count_only
        self.messages: list = []
        self.raw: list[bytes] = []
        self.counts: Counter = Counter()
        self.total = 0
        self.dropped = 0
        self.lock = threading.Lock()
        self.holding = threading.Event()
        self._released = threading.Event()
        self.host = host
        self.port = port or free_port()
        kwargs: dict = {}
        ctx = None
        if tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(cert), str(key))
        if tls == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=False)
        if auth:
            # With implicit TLS aiosmtpd does not know the socket is encrypted: allow AUTH there.
            kwargs.update(authenticator=self._authenticate, auth_require_tls=tls == "starttls")
        self.controller = Controller(_Handler(self), hostname=host, port=self.port,
                                     ssl_context=ctx if tls == "implicit" else None, ready_timeout=10, **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == self.auth
        return AuthResult(success=ok)

    @property
    def url(self) -> str:
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        cred = f"{self.auth[0]}:{self.auth[1]}@" if self.auth else ""
        return f"{scheme}://{cred}{self.host}:{self.port}"

    def release(self) -> None:
        self.hold.clear()
        self._released.set()

    def __enter__(self) -> "SmtpStandin":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._released.set()
        self.controller.stop()


class SmtpSink:
    """A minimal, fast SMTP sink for benchmarks, in a process of its own: it accepts every
    message (reading DATA in bulk up to the terminating dot, where aiosmtpd handles it line by
    line) and counts them in `total`. No TLS, no AUTH, no recording."""

    def __init__(self):
        import multiprocessing as mp

        self.port = free_port()
        self._count = mp.Value("l", 0)
        self._proc = mp.Process(target=_sink_main, args=(self.port, self._count), daemon=True)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def total(self) -> int:
        return self._count.value

    def __enter__(self) -> "SmtpSink":
        self._proc.start()
        deadline = __import__("time").monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if __import__("time").monotonic() > deadline:
                    raise
                __import__("time").sleep(0.05)

    def __exit__(self, *exc) -> None:
        self._proc.terminate()
        self._proc.join(5)


def _sink_main(port: int, count) -> None:
    async def client(reader, writer):
        try:
            await session(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # a client that went away
        finally:
            writer.close()

    async def session(reader, writer):
        writer.write(b"220 sink ESMTP\r\n")
        while True:
            line = await reader.readline()
            if not line:
                break
            verb = line[:4].upper()
            if verb in (b"EHLO",):
                writer.write(b"250-sink\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                await reader.readuntil(b"\r\n.\r\n")
                with count.get_lock():
                    count.value += 1
                writer.write(b"250 accepted\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:  # HELO, MAIL, RCPT, RSET, NOOP
                writer.write(b"250 ok\r\n")
            await writer.drain()

    async def main():
        server = await asyncio.start_server(client, "127.0.0.1", port, limit=1 << 26)
        async with server:
            await server.serve_forever()

    asyncio.run(main())

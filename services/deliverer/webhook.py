"""Posting webhook payloads (httpx) and telling what a failure means.

The URL is a secret (it is the credential of Slack, Discord, Feishu and Telegram webhooks): it is
read from the environment variable the channel names, at send time, and never logged, stored
or put in a message or an error; errors name the variable instead.

- telegram: the URL is the Bot API's sendMessage with the chat, e.g.
  https://api.telegram.org/bot<token>/sendMessage?chat_id=-100123; the chat goes in the body.
- discord: posted with ?wait=true, so a 200 means the message exists.
- json: `X-Signature: sha256=<hex>` (HMAC-SHA256 of the body under SECRET_KEY) when SECRET_KEY is
  set, and an Idempotency-Key per (pass, profile, channel, part): the one channel whose receiver
  can recognise a repeated post. Slack, Discord, Feishu and Telegram have no such key.
Replies: 2xx is accepted (feishu: and its JSON code is 0); 429 and 5xx are transient, honouring
Retry-After (or the JSON retry_after Discord and Telegram send); any other 4xx is permanent.
Posts of one split digest are paced by the platform's rate limit.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shared.config import http_url_problem
from shared.errors import PermanentError, TransientError, first_line, retry_after_seconds

# Seconds between two posts to one webhook: Slack ~1/s, Discord 5 per 2 s, Telegram ~1/s per
# chat, Feishu 5/s; a JSON receiver is ours to size.
PACE = {"slack": 1.0, "discord": 0.4, "telegram": 1.0, "feishu": 0.25, "json": 0.0}
FEISHU_RATE_CODES = {9499, 11232, 11233}  # "too many requests" answered with HTTP 200


def resolve(fmt: str, env_name: str, environ) -> tuple[str, dict]:
    """(the URL to post to, fields every body gets) from the variable `env_name`."""
    url = (environ.get(env_name) or "").strip()
    if not url:
        raise PermanentError(f"${env_name} is not set (the {fmt} webhook's URL)")
    problem = http_url_problem(url)  # the same rule as every configured URL (never echoed: a secret)
    if problem:
        raise PermanentError(f"${env_name} is not an http(s) URL with a host: it {problem}")
    parts = urlsplit(url)
    extra: dict = {}
    if fmt == "telegram":
        query = dict(parse_qsl(parts.query))
        if "chat_id" not in query:
            raise PermanentError(f"${env_name}: a Telegram URL needs ?chat_id=<chat> (…/bot<token>/sendMessage?chat_id=…)")
        extra["chat_id"] = query.pop("chat_id")
        url = urlunsplit(parts._replace(query=urlencode(query)))
    elif fmt == "discord":
        query = dict(parse_qsl(parts.query))
        query["wait"] = "true"
        url = urlunsplit(parts._replace(query=urlencode(query)))
    return url, extra


class WebhookPoster:
    def __init__(self, client, fmt: str, env_name: str, environ, secret: bytes | None = None):
        self.client, self.fmt, self.env_name = client, fmt, env_name
        self.url, self.extra = resolve(fmt, env_name, environ)
        self.secret = secret if fmt == "json" else None
        self.last_post = 0.0
        self.hold_until = 0.0

    def _scrub(self, text: str) -> str:
        text = " ".join(str(text).split())
        for secret in (self.url, self.url.split("?")[0], urlsplit(self.url).path):
            if secret and len(secret) > 1:
                text = text.replace(secret, f"${self.env_name}")
        return text[:200]

    def post(self, body: dict, idempotency_key: str) -> None:
        """Returns when the platform accepted the post; raises TransientError/PermanentError."""
        wait = max(self.last_post + PACE[self.fmt], self.hold_until) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        data = json.dumps({**body, **self.extra}, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.fmt == "json":
            headers["Idempotency-Key"] = idempotency_key
            if self.secret:
                headers["X-Signature"] = "sha256=" + hmac.new(self.secret, data, hashlib.sha256).hexdigest()
        where = f"{self.fmt} webhook ${self.env_name}"
        try:
            resp = self.client.post(self.url, content=data, headers=headers)
        except Exception as exc:  # httpx.TransportError and kin: connection refused, timeout, TLS
            raise TransientError(f"{where}: {self._scrub(first_line(exc))}") from None
        finally:
            self.last_post = time.monotonic()
        self._pace(resp)
        if resp.status_code == 429 or resp.status_code >= 500 or resp.status_code == 408:
            raise TransientError(f"{where}: HTTP {resp.status_code}", retry_after=self._retry_after(resp))
        if resp.status_code >= 400:
            raise PermanentError(f"{where}: HTTP {resp.status_code}: {self._scrub(resp.text)}")
        if self.fmt == "feishu":
            self._feishu_code(resp, where)

    def _pace(self, resp) -> None:
        # Discord says how many posts are left in its window: wait for the window when none is.
        if resp.headers.get("x-ratelimit-remaining") == "0":
            try:
                self.hold_until = time.monotonic() + min(float(resp.headers.get("x-ratelimit-reset-after", 1)), 60)
            except ValueError:
                pass

    @staticmethod
    def _retry_after(resp) -> float | None:
        seconds = retry_after_seconds(resp.headers)
        if seconds is None:
            try:
                body = resp.json()
                seconds = float(body.get("retry_after") or (body.get("parameters") or {}).get("retry_after"))
            except (ValueError, TypeError, AttributeError):
                return None
        return seconds

    def _feishu_code(self, resp, where: str) -> None:
        try:
            body = resp.json()
        except ValueError:
            return
        code = body.get("code", body.get("StatusCode", 0)) if isinstance(body, dict) else 0
        if code in (0, None):
            return
        msg = self._scrub(body.get("msg") or body.get("StatusMessage") or "")
        if code in FEISHU_RATE_CODES:
            raise TransientError(f"{where}: rate limited ({code} {msg})", retry_after=1.0)
        raise PermanentError(f"{where}: refused ({code} {msg})")

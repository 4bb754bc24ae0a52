"""One chat completion against an OpenAI-compatible endpoint, with errors mapped for the task layer.

Retries: the client is made with max_retries=0. Celery retries the task (with the server's
Retry-After as countdown, after asking the GLOBAL rate limiter again); retries inside the
openai client would multiply with Celery's and would re-send without a rate-limiter slot.

Error mapping (`complete`):
  429                                   -> RateLimited (a TransientError; retry_after from
                                           retry-after-ms / retry-after: seconds or an HTTP date)
  timeout, connection error, 5xx, 409   -> TransientError
  400/401/403/404/422 and other 4xx     -> PermanentError with a one-line reason
  a body that is not valid JSON, or not a chat completion
                                        -> TransientError: in practice it is a proxy/gateway
                                           hiccup or a cut-off body, not a property of the
                                           request; Celery's max_retries bounds the cost.
  empty or missing content              -> PermanentError("empty answer")
  any other openai.OpenAIError          -> PermanentError (one line)
Every raised error carries `reason_code` and `http_status` (shared/reasons.py): what public
outputs say, in our words. Its message (for logs and summaries.error only) holds the server's
text cleaned of control characters and escape sequences and scrubbed of the API key (some
providers echo the key they were given in their 401 message) and of anything that looks like a
key (shared/text.py). The answer's text is cleaned of control characters before it is returned.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from shared.budget import estimate_tokens
from shared.errors import ConfigError, PermanentError, TransientError, retry_after_seconds
from shared.text import clean, one_line, scrub_secrets

_REASON_CAP = 200


class RateLimited(TransientError):
    """The provider answered 429: the caller pauses the GLOBAL limiter (every replica), not
    only this task. Other TransientErrors (5xx, timeouts) say nothing about the rate."""


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str


def make_client(base_url: str, api_key: str, timeout: float):
    """An openai.OpenAI client with max_retries=0 (see the module docstring) and `timeout`
    seconds per request. Raises ConfigError if the key is empty."""
    if not api_key or not api_key.strip():
        raise ConfigError("the LLM API key is empty")
    import openai  # lazily: importing openai is slow and only the summarizer needs it

    client = openai.OpenAI(base_url=base_url, api_key=api_key.strip(), timeout=timeout, max_retries=0)
    # The resource classes are imported on first use (~60 ms idle, far more on a loaded host).
    # Touch them now, before any rate-limit slot is taken: a first call that reached the
    # provider late would share a provider second with the next grant (a 429 upstream).
    client.chat.completions  # noqa: B018
    return client


def complete(client, model: str, messages: list[dict], temperature: float, max_tokens: int,
             json_mode: bool) -> Completion:
    """One chat completion. Returns Completion(text, prompt_tokens, completion_tokens, model);
    raises TransientError / PermanentError as in the module docstring. If json_mode is
    rejected with a 400 that mentions response_format, the request is sent once more without it."""
    import openai

    kwargs = dict(model=model, messages=messages, temperature=temperature, max_tokens=max_tokens)
    if json_mode:
        kwargs["response_format"] = {"type": "json_object"}
    secret = getattr(client, "api_key", None)
    try:
        try:
            resp = client.chat.completions.create(**kwargs)
        except openai.BadRequestError as exc:
            if not (json_mode and "response_format" in _server_message(exc)):
                raise
            kwargs.pop("response_format")
            resp = client.chat.completions.create(**kwargs)
    except openai.RateLimitError as exc:
        raise _coded(RateLimited(_reason("rate limited", exc, secret),
                                 retry_after=retry_after_seconds(exc.response.headers)), "rate_limited", exc) from None
    except openai.APITimeoutError:
        raise _coded(TransientError("LLM request timed out"), "timed_out") from None
    except openai.APIConnectionError as exc:
        # Our words only: the client's message may name the URL (and whatever it carries).
        raise _coded(TransientError(f"cannot reach the LLM server ({type(exc.__cause__ or exc).__name__})"),
                     "unreachable") from None
    except openai.APIStatusError as exc:
        code = exc.status_code
        if code >= 500 or code in (408, 409):
            raise _coded(TransientError(_reason("server error", exc, secret),
                                        retry_after=retry_after_seconds(exc.response.headers)),
                         "provider_error", exc) from None
        kind = "unauthorized" if code in (401, 403) else "rejected"
        raise _coded(PermanentError(_reason("request rejected", exc, secret)), kind, exc) from None
    except (openai.APIResponseValidationError, json.JSONDecodeError, UnicodeDecodeError):
        raise _coded(TransientError("the LLM server sent a malformed response"), "malformed") from None
    except openai.OpenAIError as exc:  # anything else the client raises: do not pay again blindly
        raise _coded(PermanentError(_scrub(f"LLM client error ({type(exc).__name__}): {exc}", secret)),
                     "provider_error") from None
    return _completion(resp, model)


def _coded(err, code: str, exc=None):
    """`err` with the reason code (shared/reasons.py) and the HTTP status public outputs may show."""
    err.reason_code = code
    status = getattr(exc, "status_code", None)
    err.http_status = status if isinstance(status, int) and 100 <= status <= 599 else None
    return err


def _completion(resp, model: str) -> Completion:
    choices = getattr(resp, "choices", None)
    if not isinstance(choices, list):  # e.g. a text/html body the client returned as a str
        raise _coded(TransientError("the LLM server sent a malformed response"), "malformed")
    if not choices:
        raise _coded(PermanentError("empty answer"), "empty")
    message = getattr(choices[0], "message", None)
    text = getattr(message, "content", None)
    text = clean(text) if isinstance(text, str) else None  # the answer is stored and published
    if not text or not text.strip():
        raise _coded(PermanentError("empty answer"), "empty")
    usage = getattr(resp, "usage", None)
    return Completion(
        text=text,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        model=one_line(getattr(resp, "model", None), 200) or model,
    )


def _server_message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        msg = inner.get("message") if isinstance(inner, dict) else inner
        if msg:
            return str(msg)
    return str(getattr(exc, "message", "") or exc)


def _scrub(text: str, secret: str | None) -> str:
    """One line for the logs: no control characters or escape sequences, no secret, capped."""
    return one_line(scrub_secrets(one_line(text), secret), _REASON_CAP)


def _reason(what: str, exc, secret: str | None) -> str:
    return _scrub(f"LLM {what} (HTTP {exc.status_code}): {_server_message(exc)}", secret)


def estimate_messages_tokens(messages: list[dict]) -> int:
    """estimate_tokens over all message contents plus a few tokens of framing per message."""
    return sum(estimate_tokens(str(m.get("content") or "")) + 4 for m in messages)


def cut_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of `text` whose estimate is <= max_tokens, cut back to a whitespace
    boundary when one is near (so words are not split)."""
    if max_tokens <= 0:
        return ""
    if estimate_tokens(text) <= max_tokens:
        return text
    lo, hi = 0, len(text)  # binary search: estimate_tokens(text[:lo]) <= max_tokens
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate_tokens(text[:mid]) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space >= lo - 200 and space > 0:
        cut = cut[:space]
    return cut.rstrip()

"""llm.complete with the real openai client over HTTP against the local stand-in server."""
from __future__ import annotations

import email.utils
import json
import time

import pytest

from services.summarizer import llm
from services.summarizer.parse import parse_summary
from services.summarizer.prompt import build_messages
from shared.errors import ConfigError, PermanentError, TransientError
from tests.standins.llm import LLMStandin, embed, summary_for

KEY = "sk-standin-secret-0123456789"


def _call(standin, timeout=5.0, json_mode=True, key=KEY, title="Sparse Attention at Scale"):
    client = llm.make_client(standin.base_url, key, timeout)
    return llm.complete(client, "qwen-long", build_messages(title, "We study attention.", "en"),
                        0.3, 400, json_mode)


def test_success_with_usage_and_parsed_content():
    with LLMStandin(api_key=KEY) as s:
        out = _call(s)
    assert out.model == "qwen-long" and out.prompt_tokens > 0 and out.completion_tokens > 0
    parsed = parse_summary(out.text)
    expected = summary_for("Sparse Attention at Scale")
    assert parsed["tldr"] == expected["tldr"]
    assert parsed["sections"]["results"] == expected["results"]
    (_, path, body, status), = s.requests
    assert (path, status) == ("/v1/chat/completions", 200)
    assert body["response_format"] == {"type": "json_object"} and body["max_tokens"] == 400


def test_client_does_not_retry_by_itself():
    with LLMStandin(api_key=KEY, mode="500") as s:
        with pytest.raises(TransientError):
            _call(s)
    assert s.statuses() == [500]  # one request: Celery does the retrying


@pytest.mark.parametrize("headers, expected", [
    ({"retry_after": "7"}, 7.0),
    ({"retry_after": "7", "retry_after_ms": "1500"}, 1.5),
])
def test_429_is_transient_with_retry_after(headers, expected):
    with LLMStandin(api_key=KEY, mode="429", **headers) as s:
        with pytest.raises(TransientError, match="HTTP 429") as info:
            _call(s)
    assert info.value.retry_after == expected


def test_429_with_http_date_retry_after():
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    with LLMStandin(api_key=KEY, mode="429", retry_after=when) as s:
        with pytest.raises(TransientError) as info:
            _call(s)
    assert 100 < info.value.retry_after <= 121


def test_500_timeout_and_malformed_are_transient():
    with LLMStandin(api_key=KEY, script=["500", "slow", "malformed", "html", "ok"], slow_seconds=3) as s:
        with pytest.raises(TransientError, match="HTTP 500.*internal server error"):
            _call(s)
        with pytest.raises(TransientError, match="timed out"):
            _call(s, timeout=0.5)
        with pytest.raises(TransientError, match="malformed"):
            _call(s)
        with pytest.raises(TransientError, match="malformed"):
            _call(s)
        assert parse_summary(_call(s, title="Recovered").text)["sections"]["method"].startswith("Method of Recovered")


@pytest.mark.parametrize("mode", ["empty", "null"])
def test_empty_answer_is_permanent(mode):
    with LLMStandin(api_key=KEY, mode=mode) as s:
        with pytest.raises(PermanentError, match="^empty answer$"):
            _call(s)


def test_markdown_and_huge_answers_still_parse():
    with LLMStandin(api_key=KEY, script=["markdown", "huge"], huge_chars=100_000) as s:
        md = parse_summary(_call(s, title="Paper M").text)
        huge = parse_summary(_call(s, title="Paper H").text)
    assert md["tldr"] == "TL;DR: Paper M in one sentence."
    assert md["sections"]["conclusions"] == summary_for("Paper M")["conclusions"]
    assert huge["sections"]["results"] == summary_for("Paper H")["results"]
    assert len(huge["sections"]["method"]) == 8000


def test_401_is_permanent_and_never_shows_the_key(caplog):
    wrong = "sk-wrong-key-abcdef123456"
    with LLMStandin(api_key=KEY) as s:
        with pytest.raises(PermanentError) as info:
            _call(s, key=wrong)
    msg = str(info.value)
    assert "HTTP 401" in msg and "Incorrect API key" in msg
    assert wrong not in msg and "abcdef123456" not in msg and "\n" not in msg
    assert all(wrong not in r.getMessage() for r in caplog.records)
    # the stand-in really echoed the key: the scrubbing is what kept it out
    assert s.statuses() == [401]


def test_json_mode_rejected_is_retried_once_without_it():
    with LLMStandin(api_key=KEY, reject_response_format=True) as s:
        out = _call(s, title="No JSON Mode")
    assert parse_summary(out.text)["tldr"] == "TL;DR: No JSON Mode in one sentence."
    assert s.statuses() == [400, 200]
    assert "response_format" in s.requests[0][2] and "response_format" not in s.requests[1][2]


def test_other_400_is_permanent_without_retry():
    with LLMStandin(api_key=KEY, reject_response_format=True) as s:
        client = llm.make_client(s.base_url, KEY, 5)
        with pytest.raises(PermanentError, match="HTTP 404"):
            llm.complete(client.with_options(base_url=s.base_url + "/nope"), "m",
                         build_messages("T", "B", "en"), 0.3, 100, True)


def test_connection_refused_is_transient_and_empty_key_is_config_error():
    s = LLMStandin(api_key=KEY)
    url = s.base_url
    s._server.server_close()  # the port is free again: nothing listens
    client = llm.make_client(url, KEY, 2)
    with pytest.raises(TransientError, match="cannot reach"):
        llm.complete(client, "m", build_messages("T", "B", "en"), 0.3, 100, False)
    with pytest.raises(ConfigError):
        llm.make_client(url, "  ", 2)


def test_embeddings_endpoint_is_deterministic_and_normalised():
    import openai

    with LLMStandin(api_key=KEY) as s:
        client = openai.OpenAI(base_url=s.base_url, api_key=KEY, max_retries=0)
        out = client.embeddings.create(model="text-embedding-3-small",
                                       input=["sparse attention kernels", "cooking recipes"])
    a, b = (d.embedding for d in out.data)
    assert len(a) == 256 and abs(sum(v * v for v in a) - 1.0) < 1e-4
    assert a == pytest.approx(embed("sparse attention kernels"), abs=1e-6)
    assert abs(sum(x * y for x, y in zip(a, embed("Sparse attention kernels!")))) > 0.999
    assert abs(sum(x * y for x, y in zip(a, b))) < 0.9
    assert json.loads(json.dumps(s.requests[0][2]))["input"][1] == "cooking recipes"

"""Webhook delivery against a real HTTP receiver on a socket: each format's payload shape and
escaping, splitting by the platforms' limits, 429 with Retry-After, permanent 4xx, and the URL
(a secret) never stored, logged or shown."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re

import pytest

from tests.delivery_seed import HOSTILE, deliver_now, make_runtime, paper_rows, plan, seed_pass, statuses
from tests.standins.webhooks import WebhookReceiver

FORMATS = ("slack", "discord", "feishu", "telegram", "json")
PATHS = {"slack": "/slack/T0/B0/sekrit", "discord": "/discord/api/webhooks/1/sekrit", "feishu": "/feishu/hook/sekrit",
         "telegram": "/telegram/botsekrit/sendMessage", "json": "/json/sekrit"}


@pytest.fixture
def hooks(monkeypatch):
    with WebhookReceiver() as r:
        for fmt, path in PATHS.items():
            url = r.url(path) + ("?chat_id=-100123" if fmt == "telegram" else "")
            monkeypatch.setenv(f"HOOK_{fmt.upper()}", url)
        yield r


def _rt(tmp_path, db_url, formats=FORMATS, **kw):
    channels = [{"type": "webhook", "format": f, "url_env": f"HOOK_{f.upper()}"} for f in formats]
    return make_runtime(tmp_path, db_url, deliver=channels, **kw)


def test_each_format_payload_and_escaping(tmp_path, db_url, hooks, caplog, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "k" * 32)
    caplog.set_level(logging.INFO)
    rt = _rt(tmp_path, db_url, env={"SECRET_KEY": "k" * 32})
    pass_id = seed_pass(rt, paper_rows(3))
    deliver_now(rt, plan(rt, pass_id))
    assert [s[1] for s in statuses(rt)] == ["sent"] * 5, statuses(rt)
    bodies = {fmt: hooks.bodies(path) for fmt, path in PATHS.items()}
    assert all(len(b) == 1 for b in bodies.values()), {k: len(v) for k, v in bodies.items()}
    abs0, pdf0 = "https://arxiv.org/abs/2411.17700", "https://arxiv.org/pdf/2411.17700v1"

    slack = bodies["slack"][0]
    assert slack["text"] == "arXiv digest 2024-11-28 · default · 3 papers"
    assert [b["type"] for b in slack["blocks"]] == ["header", "context", "section", "section", "section"]
    first = slack["blocks"][2]["text"]["text"]
    assert f"<{abs0}|1. " not in first and f"*1. <{abs0}|" in first and f"<{pdf0}|PDF>" in first
    assert "&lt;script&gt;" in first and "&lt;!channel&gt;" in first and "&amp; &lt;b&gt;" in first
    assert "<!channel>" not in json.dumps(slack) and "<script" not in first

    discord = bodies["discord"][0]
    assert discord["allowed_mentions"] == {"parse": []}
    assert len(discord["embeds"]) == 3 and discord["embeds"][0]["url"] == abs0
    title = discord["embeds"][0]["title"]
    assert r"\*star\*" in title and r"\_under\_" in title and r"\@everyone" in title and r"\[click\]\(javascript" in title
    assert f"[PDF]({pdf0})" in discord["embeds"][0]["description"]
    assert "https://digest.example.org/" in discord["content"] and len(discord["content"]) <= 2000
    assert hooks.posts[[p[1] for p in hooks.posts].index(PATHS["discord"])][2] == {"wait": "true"}

    tg = bodies["telegram"][0]
    assert tg["chat_id"] == "-100123" and tg["parse_mode"] == "HTML"
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in tg["text"]
    assert f'<a href="{abs0}">' in tg["text"] and "<script" not in tg["text"]
    tags = set(re.findall(r"</?([a-z]+)", tg["text"]))
    assert tags <= {"a", "b", "i"}  # only the tags Telegram's HTML mode allows, all ours

    card = bodies["feishu"][0]
    assert card["msg_type"] == "interactive"
    plain_texts = [e["text"]["content"] for e in card["card"]["elements"] if e.get("text", {}).get("tag") == "plain_text"]
    assert HOSTILE in plain_texts[0]  # shown as text: plain_text is never interpreted
    lark = [e["text"]["content"] for e in card["card"]["elements"] if e.get("text", {}).get("tag") == "lark_md"]
    assert all("javascript" not in t and "<" not in t for t in lark) and f"[PDF]({pdf0})" in lark[1]

    # json: the papers.json items themselves, signed, with a key the receiver can de-duplicate on.
    post = next(p for p in hooks.posts if p[1] == PATHS["json"])
    headers, body, raw = {k.lower(): v for k, v in post[3].items()}, post[4], post[5]
    with rt.session() as s:
        from shared import digest
        assert body["papers"] == json.loads(json.dumps(digest.load_pass_papers(s, pass_id, "default")))
    assert (body["profile"], body["day"], body["pass_id"], body["count"]) == ("default", "2024-11-28", pass_id, 3)
    assert headers["x-signature"] == "sha256=" + hmac.new(b"k" * 32, raw, hashlib.sha256).hexdigest()
    assert headers["idempotency-key"].startswith("arxiv-bot-2024-11-28-default-")

    # The URLs are secrets: not in the database, not in the log.
    with rt.session() as s:
        from shared.models import Delivery
        stored = json.dumps([[str(getattr(r, c.name)) for c in Delivery.__table__.columns] for r in s.query(Delivery)])
    assert "sekrit" not in stored and "sekrit" not in caplog.text


def test_long_digests_are_split_by_platform_limits(tmp_path, sqlite_url, hooks):
    rt = _rt(tmp_path, sqlite_url, formats=("slack", "discord", "telegram", "feishu"), threads=4)
    deliver_now(rt, plan(rt, seed_pass(rt, paper_rows(60, hostile_first=False))))
    assert [s[1] for s in statuses(rt)] == ["sent"] * 4
    ids = [f"2411.{17700 + i:05d}" for i in range(60)]

    def each_once(texts):
        found = [m for t in texts for m in re.findall(r"arxiv\.org/abs/(2411\.\d{5})", t)]
        assert found == ids

    slack = hooks.bodies(PATHS["slack"])
    assert len(slack) == 2 and all(len(b["blocks"]) <= 50 for b in slack)
    each_once(json.dumps(b["blocks"]) for b in slack)
    assert slack[1]["blocks"][0]["type"] == "context" and "part 2/2" in slack[1]["blocks"][0]["elements"][0]["text"]
    discord = hooks.bodies(PATHS["discord"])
    assert len(discord) == 6 and all(len(b["embeds"]) <= 10 and len(b["content"]) <= 2000 for b in discord)
    assert all(sum(len(e["title"]) + len(e["description"]) for e in b["embeds"]) <= 6000 for b in discord)
    each_once(e["url"] for b in discord for e in b["embeds"])
    telegram = hooks.bodies(PATHS["telegram"])
    assert len(telegram) >= 2 and all(len(b["text"]) <= 4096 for b in telegram)
    each_once(b["text"] for b in telegram)
    feishu = hooks.bodies(PATHS["feishu"])
    assert len(feishu) >= 2 and all(len(json.dumps(b, ensure_ascii=False).encode()) <= 25_000 for b in feishu)
    each_once(json.dumps(b) for b in feishu)


def test_429_retry_after_is_honoured_then_the_post_succeeds(tmp_path, sqlite_url, hooks):
    hooks.script[PATHS["slack"]] = ["429:1"]
    hooks.script[PATHS["discord"]] = ["discord429:1.5"]
    rt = _rt(tmp_path, sqlite_url, formats=("slack", "discord"))
    deliver_now(rt, plan(rt, seed_pass(rt, paper_rows(2))))
    assert [(s[1], s[3]) for s in statuses(rt)] == [("sent", 2), ("sent", 2)]
    for path, wait in ((PATHS["slack"], 1.0), (PATHS["discord"], 1.5)):
        times = [p[0] for p in hooks.posts if p[1] == path]
        assert len(times) == 2 and times[1] - times[0] >= wait  # not before the server said


def test_a_split_digest_resumes_after_the_part_that_failed(tmp_path, sqlite_url, hooks):
    hooks.script[PATHS["telegram"]] = ["200", "429:1"]  # the second message is rate limited once
    rt = _rt(tmp_path, sqlite_url, formats=("telegram",))
    deliver_now(rt, plan(rt, seed_pass(rt, paper_rows(40, hostile_first=False))))
    texts = [b["text"] for b in hooks.bodies(PATHS["telegram"])]
    assert len(texts) >= 4 and texts[1] == texts[2] and len(set(texts)) == len(texts) - 1  # part 2 again, 1 not
    assert statuses(rt)[0][1] == "sent"


@pytest.mark.parametrize("reply, why", [("404", "HTTP 404"), ("feishu:19021", "refused (19021")])
def test_a_4xx_is_permanent_and_never_retried(tmp_path, sqlite_url, hooks, reply, why):
    fmt = "feishu" if reply.startswith("feishu") else "discord"
    hooks.script[PATHS[fmt]] = [reply, reply]
    rt = _rt(tmp_path, sqlite_url, formats=(fmt,))
    deliver_now(rt, plan(rt, seed_pass(rt, paper_rows(2))))
    [(_, status, error, attempts)] = statuses(rt)
    assert status == "failed" and why in error and attempts == 1 and "sekrit" not in error
    assert f"${'HOOK_' + fmt.upper()}" in error
    assert hooks.counts[PATHS[fmt]] == 1


def test_an_unset_url_variable_fails_with_its_name(tmp_path, sqlite_url, monkeypatch):
    monkeypatch.delenv("HOOK_SLACK", raising=False)
    rt = _rt(tmp_path, sqlite_url, formats=("slack",))
    deliver_now(rt, plan(rt, seed_pass(rt, paper_rows(1))))
    [(_, status, error, _)] = statuses(rt)
    assert status == "failed" and error == "$HOOK_SLACK is not set (the slack webhook's URL)"

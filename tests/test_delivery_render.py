"""The channel renderers on fuzzed papers (titles, authors, summaries from arXiv and the LLM are
outside input): whatever the text, each platform's markup carries only our own tags and links,
the text survives escaping, and every part stays within the platform's limits."""
from __future__ import annotations

import datetime as dt
import html
import json
import re

from hypothesis import example, given, settings, strategies as st

from services.deliverer import chat, mail
from services.deliverer.content import Digest
from shared.render.sanitize import cut, plain
from tests.delivery_seed import HOSTILE

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


def _digest(titles, authors, tldr) -> Digest:
    shown = []
    for i, title in enumerate(titles):
        pid = f"2411.{17700 + i:05d}"
        shown.append({"id": pid, "title": title, "authors": authors, "abstract": title * 2, "primary_category": "cs.LG",
                      "score": 3.5, "announce_type": "new", "summary": {"tldr": tldr, "sections": {}, "text": tldr},
                      "links": {"abs": f"https://arxiv.org/abs/{pid}", "pdf": f"https://arxiv.org/pdf/{pid}v1"}})
    return Digest(pass_id=1, profile="p", day=dt.date(2024, 11, 28), papers=shown, shown=shown,
                  page_url="https://digest.example.org/p/p/")


def _ours(urls) -> bool:
    return all(u.startswith(("https://arxiv.org/", "https://digest.example.org/")) for u in urls)


@settings(max_examples=60, deadline=None)
@given(titles=st.lists(TEXT, min_size=1, max_size=25), authors=st.lists(TEXT, max_size=8), tldr=TEXT)
@example(titles=[HOSTILE, "a <b>b</b> & <i>c</i>"], authors=["<@123> <#chan>"], tldr="<!here> <https://evil|x>")
def test_fuzzed_papers_render_safely_in_every_format(titles, authors, tldr):
    d = _digest(titles, authors, tldr)
    for body in chat.slack(d):
        assert len(body["blocks"]) <= chat.SLACK_BLOCKS
        for block in body["blocks"]:
            text = json.dumps(block)
            if block["type"] == "section":
                raw = block["text"]["text"]
                assert len(raw) <= chat.SLACK_TEXT
                assert _ours(re.findall(r"<([^|>]+)\|", raw))  # every <...|...> is one of our links
                assert not re.search(r"<(?!https://(arxiv\.org|digest\.example\.org)/)", raw)
            assert text
    for body in chat.discord(d):
        assert len(body["embeds"]) <= 10 and len(body["content"]) <= 2000 and body["allowed_mentions"] == {"parse": []}
        assert sum(len(e["title"]) + len(e["description"]) for e in body["embeds"]) <= 6000
        for e in body["embeds"]:
            assert len(e["title"]) <= 256 and _ours([e["url"]])
            assert _ours(re.findall(r"(?<!\\)\]\((https?://[^)]+)\)", e["description"]))
    messages = chat.telegram(d)
    joined = "".join(m["text"] for m in messages)
    for t in titles:
        assert html.escape(cut(plain(t), 400)) in joined
    for body in messages:
        assert len(body["text"]) <= 4096
        assert set(re.findall(r"<(/?[a-z]+)", body["text"])) <= {"a", "/a", "b", "/b", "i", "/i"}
        assert _ours(re.findall(r'href="([^"]+)"', body["text"]))
    for body in chat.feishu(d):
        for el in body["card"]["elements"]:
            if el.get("text", {}).get("tag") == "lark_md":
                assert _ours(re.findall(r"\]\(([^)]+)\)", el["text"]["content"]))
    page = mail.html_body(d)
    # Our markup, plus what the site's sanitiser lets through from the LLM's summary (its small
    # allow-list: no script, no image, no style, http(s) links only).
    from shared.render.sanitize import ALLOWED_TAGS
    assert set(re.findall(r"<([a-z0-9]+)", page)) <= {"html", "head", "meta", "title", "body", "div", "h1", "h2", "p",
                                                      "a", "strong"} | ALLOWED_TAGS
    assert all(h.startswith(("https://", "http://")) for h in re.findall(r'href="([^"]+)"', page))
    for t in titles:  # the text itself is there, escaped
        shown = " ".join(t.split())
        if shown and "\x00" not in shown and not re.search(r"[\x00-\x1f\x7f]", t):
            assert html.escape(shown)[:40] in page

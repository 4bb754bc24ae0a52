"""The digest as webhook payloads, one builder per format, each split by its platform's limits.

`parts(format, digest)` returns the JSON bodies to post, in order. Untrusted text (titles,
authors, summaries) is escaped for each platform's markup, and links are only the ones we make
(arXiv, PDF, the profile's page, feedback):
- slack: Block Kit; mrkdwn with & < > escaped (so no <!channel>, no forged link); at most 50
  blocks and 3,000 characters per section.
- discord: embeds; Markdown punctuation backslash-escaped, and allowed_mentions empty (no
  @everyone ping); content at most 2,000 characters, at most 10 embeds and 6,000 characters
  of embeds per message.
- telegram: sendMessage with parse_mode HTML; & < > " escaped; at most 4,096 characters.
- feishu: an interactive card; untrusted text only in plain_text elements (never interpreted),
  our links in lark_md; at most ~20 KB per card.
- json: the papers.json items in one body, with the profile, day and pass.
A long digest becomes several messages, split between papers; the first one carries the title.
"""
from __future__ import annotations

import html
import json
import re

from shared.render.sanitize import cut, plain

AUTHORS_SHOWN = 5
TLDR_CHARS = 900
SLACK_BLOCKS, SLACK_TEXT, SLACK_HEADER = 50, 3000, 150
DISCORD_CONTENT, DISCORD_EMBEDS, DISCORD_EMBED_TOTAL, DISCORD_TITLE = 2000, 10, 6000, 256
TELEGRAM_TEXT = 4096
FEISHU_BYTES, FEISHU_ELEMENTS = 20_000, 60


def _authors(p: dict) -> str:
    names = [plain(a) for a in p.get("authors") or []]
    return ", ".join(names[:AUTHORS_SHOWN]) + (" et al." if len(names) > AUTHORS_SHOWN else "")


def _meta(p: dict) -> str:
    bits = [plain(p.get("primary_category")), f"score {float(p.get('score') or 0):.1f}"]
    return " · ".join(b for b in bits if b) + (" · updated" if p.get("updated") else "")


def _tldr(p: dict) -> str:
    s = p.get("summary") or {}
    return cut(plain(s.get("tldr")), TLDR_CHARS) if s.get("tldr") else ""


def _trim(text: str, limit: int) -> str:
    """At most `limit` characters, keeping line breaks (cut() makes one line)."""
    return text if len(text) <= limit else text[:limit - 3].rstrip("\\") + "..."


def _numbered(items: list) -> list:
    return list(enumerate(items, 1))


# -- slack ----------------------------------------------------------------------------------------

def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(d) -> list[dict]:
    e = slack_escape
    head = [{"type": "header", "text": {"type": "plain_text", "text": cut(d.title(), SLACK_HEADER), "emoji": False}}]
    if d.page_url:
        head.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{d.page_url}|Read it on the web>"}]})
    blocks = []
    for i, p in _numbered(d.shown):
        links = p["links"]
        text = f"*{i}. <{links['abs']}|{e(plain(p['title']))}>*\n{e(_authors(p))}\n_{e(_meta(p))}_"
        if _tldr(p):
            text += f"\n>{e(_tldr(p))}"
        row = [f"<{links['pdf']}|PDF>"]
        if "up" in links:
            row += [f"<{links['up']}|More like this>", f"<{links['down']}|Less like this>"]
        text = _trim(text, SLACK_TEXT - 200) + "\n" + " · ".join(row)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    room = SLACK_BLOCKS - 1  # every message after the first starts with a context line
    chunks = [blocks[:SLACK_BLOCKS - len(head)]] + [blocks[i:i + room]
                                                     for i in range(SLACK_BLOCKS - len(head), len(blocks), room)]
    chunks = [c for c in chunks if c] or [[]]
    out = []
    for k, chunk in enumerate(chunks):
        first = head if k == 0 else [{"type": "context", "elements": [
            {"type": "mrkdwn", "text": e(f"{d.title()} (part {k + 1}/{len(chunks)})")}]}]
        out.append({"text": d.title(), "blocks": first + chunk, "unfurl_links": False, "unfurl_media": False})
    return out


# -- discord --------------------------------------------------------------------------------------

_DISCORD_SPECIAL = re.compile(r"([\\*_~`|<>#\-\[\]()@:])")


def discord_escape(text: str) -> str:
    return _DISCORD_SPECIAL.sub(r"\\\1", text)


def discord(d) -> list[dict]:
    e = discord_escape
    embeds = []
    for i, p in _numbered(d.shown):
        links = p["links"]
        desc = f"{e(_authors(p))}\n*{e(_meta(p))}*"
        if _tldr(p):
            desc += f"\n**TL;DR:** {e(_tldr(p))}"
        row = [f"[PDF]({links['pdf']})"]
        if "up" in links:
            row += [f"[More like this]({links['up']})", f"[Less like this]({links['down']})"]
        embeds.append({"title": _trim(e(f"{i}. {plain(p['title'])}"), DISCORD_TITLE), "url": links["abs"],
                       "description": desc + "\n" + " · ".join(row), "color": 0x1A56A8})
    chunks, chunk, size = [], [], 0
    for em in embeds:
        n = len(em["title"]) + len(em["description"])
        if chunk and (len(chunk) == DISCORD_EMBEDS or size + n > DISCORD_EMBED_TOTAL):
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(em)
        size += n
    chunks.append(chunk)
    out = []
    for k, chunk in enumerate(chunks):
        content = f"**{e(d.title())}**"
        if len(chunks) > 1:
            content += f" (part {k + 1}/{len(chunks)})"
        if k == 0 and d.page_url:
            content += f"\n<{d.page_url}>"
        out.append({"content": content[:DISCORD_CONTENT], "embeds": chunk, "allowed_mentions": {"parse": []}})
    return out


# -- telegram -------------------------------------------------------------------------------------

def telegram_escape(text: str) -> str:
    return html.escape(text, quote=True)


def telegram(d) -> list[dict]:
    e = telegram_escape
    head = f"<b>{e(d.title())}</b>"
    if d.page_url:
        head += f'\n<a href="{e(d.page_url)}">Read it on the web</a>'
    pieces = []
    for i, p in _numbered(d.shown):
        links = p["links"]
        text = (f'<b>{i}. <a href="{e(links["abs"])}">{e(cut(plain(p["title"]), 400))}</a></b>\n'
                f"{e(_authors(p))}\n<i>{e(_meta(p))}</i>")
        if _tldr(p):
            text += f"\n{e(_tldr(p))}"
        row = [f'<a href="{e(links["pdf"])}">PDF</a>']
        if "up" in links:
            row += [f'<a href="{e(links["up"])}">More like this</a>', f'<a href="{e(links["down"])}">Less like this</a>']
        pieces.append(text + "\n" + " · ".join(row))
    messages, current = [], head
    for piece in pieces:
        if len(current) + 2 + len(piece) > TELEGRAM_TEXT:
            messages.append(current)
            current = piece
        else:
            current += "\n\n" + piece
    messages.append(current)
    return [{"text": m, "parse_mode": "HTML", "link_preview_options": {"is_disabled": True}} for m in messages]


# -- feishu ---------------------------------------------------------------------------------------

def feishu(d) -> list[dict]:
    items = []
    for i, p in _numbered(d.shown):
        links = p["links"]
        text = f"{i}. {plain(p['title'])}\n{_authors(p)}\n{_meta(p)}"
        if _tldr(p):
            text += f"\nTL;DR: {_tldr(p)}"
        row = [f"[arXiv]({links['abs']})", f"[PDF]({links['pdf']})"]
        if "up" in links:
            row += [f"[More like this]({links['up']})", f"[Less like this]({links['down']})"]
        items.append([{"tag": "div", "text": {"tag": "plain_text", "content": text}},
                      {"tag": "div", "text": {"tag": "lark_md", "content": " · ".join(row)}}, {"tag": "hr"}])
    intro = ([{"tag": "div", "text": {"tag": "lark_md", "content": f"[Read it on the web]({d.page_url})"}}]
             if d.page_url else [])
    chunks, chunk, size = [], list(intro), len(json.dumps(intro))
    for elements in items:
        n = len(json.dumps(elements, ensure_ascii=False).encode())
        if chunk and (size + n > FEISHU_BYTES or len(chunk) + len(elements) > FEISHU_ELEMENTS):
            chunks.append(chunk)
            chunk, size = [], 0
        chunk += elements
        size += n
    chunks.append(chunk)
    out = []
    for k, chunk in enumerate(chunks):
        title = d.title() + (f" (part {k + 1}/{len(chunks)})" if len(chunks) > 1 else "")
        out.append({"msg_type": "interactive", "card": {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": title}, "template": "blue"},
            "elements": chunk}})
    return out


# -- json -----------------------------------------------------------------------------------------

def json_body(d) -> list[dict]:
    return [{"profile": d.profile, "day": d.day.isoformat(), "pass_id": d.pass_id, "page_url": d.page_url,
             "count": d.count, "papers": d.papers}]


BUILDERS = {"slack": slack, "discord": discord, "telegram": telegram, "feishu": feishu, "json": json_body}


def parts(fmt: str, d) -> list[dict]:
    return BUILDERS[fmt](d)

"""The digest as an e-mail: one multipart/alternative message per recipient.

A plain-text part and an HTML part, both rendered from the same Digest. The HTML has inline
styles only (mail clients drop <style> and external sheets), no script and no image (nothing
remote is loaded when the mail is opened); every string from arXiv or the LLM is escaped (the
summary's Markdown goes through the site's sanitiser). Headers: Subject with the day, the
profile and the paper count; List-Unsubscribe and List-Id pointing at the profile's page; a
Message-ID derived from (pass, profile, recipient), so a message sent again after a crash is
recognisable as the same message.
"""
from __future__ import annotations

import email.policy
import email.utils
import hashlib
import html
from email.message import EmailMessage

from shared.errors import PermanentError
from shared.render.markdown import summary_markdown
from shared.render.sanitize import cut, plain, summary_html

ABSTRACT_CHARS = 600
AUTHORS_SHOWN = 6
POLICY = email.policy.SMTP.clone(max_line_length=998)


def _authors(p: dict) -> str:
    names = [plain(a) for a in p.get("authors") or []]
    return ", ".join(names[:AUTHORS_SHOWN]) + (" et al." if len(names) > AUTHORS_SHOWN else "")


def _meta(p: dict) -> str:
    bits = [plain(p.get("primary_category")), f"score {float(p.get('score') or 0):.1f}",
            plain(p.get("announce_type"))]
    if p.get("updated"):
        bits.append("updated")
    return " · ".join(b for b in bits if b)


def message_id(d, recipient: str, domain: str) -> str:
    """<arxiv-bot.DAY.PASS.PROFILE.HASH@domain>: the same for every attempt of one delivery."""
    who = hashlib.sha256(recipient.strip().lower().encode()).hexdigest()[:16]
    return f"<arxiv-bot.{d.day.isoformat()}.{d.pass_id}.{d.profile}.{who}@{domain}>"


def text_body(d) -> str:
    lines = [d.title(), ""]
    if d.page_url:
        lines += [f"Read it on the web: {d.page_url}", ""]
    for i, p in enumerate(d.shown, 1):
        links = p["links"]
        lines.append(f"{i}. {plain(p['title'])}")
        lines.append(f"   {_authors(p)}")
        lines.append(f"   {_meta(p)}")
        summary = p.get("summary")
        if summary and summary.get("tldr"):
            lines.append(f"   TL;DR: {plain(summary['tldr'])}")
        lines.append(f"   {cut(plain(p.get('abstract')), ABSTRACT_CHARS)}")
        lines.append(f"   Paper: {links['abs']}   PDF: {links['pdf']}")
        if "up" in links:
            lines.append(f"   More like this: {links['up']}   Less like this: {links['down']}")
        lines.append("")
    lines += ["--", "You get this digest because your address is in the profile's delivery list."]
    if d.page_url:
        lines.append(f"The profile's page: {d.page_url}")
    return "\n".join(lines) + "\n"


_A = 'style="color:#1a56a8;text-decoration:none"'
_MUTED = 'style="color:#5f6368;font-size:13px;margin:2px 0"'


def _link(url: str | None, text: str) -> str:
    return f'<a href="{html.escape(url)}" {_A}>{html.escape(text)}</a>' if url else html.escape(text)


def html_body(d) -> str:
    e = html.escape
    out = ['<!DOCTYPE html><html><head><meta charset="utf-8">',
           f"<title>{e(d.title())}</title></head>",
           '<body style="margin:0;padding:16px;background:#ffffff;color:#202124;'
           'font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:15px;line-height:1.45">',
           '<div style="max-width:720px;margin:0 auto">',
           f'<h1 style="font-size:20px;margin:0 0 4px">{e(d.title())}</h1>']
    if d.page_url:
        out.append(f'<p {_MUTED}>{_link(d.page_url, "Read it on the web")}</p>')
    for i, p in enumerate(d.shown, 1):
        links = p["links"]
        out.append('<div style="border-top:1px solid #e0e0e0;padding:12px 0">')
        out.append(f'<h2 style="font-size:16px;margin:0 0 4px">{i}. {_link(links["abs"], plain(p["title"]))}</h2>')
        out.append(f"<p {_MUTED}>{e(_authors(p))}</p>")
        out.append(f"<p {_MUTED}>{e(_meta(p))}</p>")
        summary = p.get("summary")
        if summary and summary.get("tldr"):
            out.append(f'<p style="margin:6px 0"><strong>TL;DR:</strong> {e(plain(summary["tldr"]))}</p>')
        if summary:
            body = summary_html(summary_markdown({**summary, "tldr": None}))
            if body:
                out.append(f'<div style="margin:6px 0;font-size:14px">{body}</div>')
        out.append(f'<p style="margin:6px 0;font-size:14px">{e(cut(plain(p.get("abstract")), ABSTRACT_CHARS))}</p>')
        row = [_link(links["abs"], "arXiv"), _link(links["pdf"], "PDF")]
        if "up" in links:
            row += [_link(links["up"], "More like this"), _link(links["down"], "Less like this")]
        out.append(f'<p style="margin:6px 0;font-size:14px">{" · ".join(row)}</p></div>')
    foot = "You get this digest because your address is in the profile's delivery list."
    if d.page_url:
        foot += " " + _link(d.page_url, "The profile's page")
    out.append(f'<p style="color:#5f6368;font-size:12px;border-top:1px solid #e0e0e0;padding-top:8px">{foot}</p>')
    out.append("</div></body></html>")
    return "\n".join(out) + "\n"


def template(d, sender: str) -> bytes:
    """The message without its per-recipient headers, serialised once per digest (both parts
    encoded): ten thousand recipients cost one rendering."""
    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = d.title()
    msg["From"] = sender
    if d.page_url:
        msg["List-Unsubscribe"] = f"<{d.page_url}>"
    msg["List-Id"] = f"arXiv digest {d.profile} <{d.profile}.arxiv-bot.invalid>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text_body(d), cte="quoted-printable")
    msg.add_alternative(html_body(d), subtype="html", cte="quoted-printable")
    return msg.as_bytes(policy=POLICY)


def for_recipient(tmpl: bytes, d, recipient: str, domain: str) -> bytes:
    """The message for one recipient, as the bytes to send: its own To, Message-ID and Date on
    top of the template's headers. Addresses are validated at config load (no CR, LF, comma or
    angle bracket: no header injection)."""
    if not recipient.isascii():  # would need SMTPUTF8 end to end
        raise PermanentError(f"{recipient!r}: addresses with non-ASCII characters are not supported")
    head = {"To": recipient, "Message-ID": message_id(d, recipient, domain),
            "Date": email.utils.formatdate(localtime=False)}
    return "".join(f"{k}: {v}\r\n" for k, v in head.items()).encode("ascii") + tmpl

"""feeds.opml: one outline per category feed, so a feed reader subscribes to each in one import.

OPML 2.0: the digest's whole feed first, then feed.xml?category=<cat> for every known category
(configured ones first), each with its page (htmlUrl). URLs are absolute (readers need them):
`base_url` is feeds.public_url or, in the web service, the URL the request came to. Built with
lxml, so every attribute is escaped.
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from lxml import etree


def render_opml(base_url: str, categories: list[str], title: str, updated: dt.datetime | None = None) -> bytes:
    """The digest's whole feed, then one feed per category."""
    base = base_url.rstrip("/")
    feeds = [{"text": f"{title} (all categories)", "xml_url": f"{base}/feed.xml", "html_url": f"{base}/"}]
    for cat in categories:
        query = urlencode({"category": cat})
        feeds.append({"text": f"{title}: {cat}", "category": cat, "xml_url": f"{base}/feed.xml?{query}",
                      "html_url": f"{base}/?{query}"})
    return render_outline(title, feeds, updated)


def render_outline(title: str, feeds: list[dict], updated: dt.datetime | None = None) -> bytes:
    """An OPML 2.0 document of `feeds` ({"text", "xml_url", "html_url", optional "category"})
    grouped under one outline titled `title` (/feeds.opml, /profiles.opml)."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    if updated is not None:
        from email.utils import format_datetime

        etree.SubElement(head, "dateModified").text = format_datetime(updated.astimezone(dt.timezone.utc),
                                                                      usegmt=True)
    body = etree.SubElement(root, "body")
    group = etree.SubElement(body, "outline", text=title, title=title)
    for feed in feeds:
        extra = {"category": feed["category"]} if feed.get("category") else {}
        etree.SubElement(group, "outline", type="rss", text=feed["text"], title=feed["text"], **extra,
                         xmlUrl=feed["xml_url"], htmlUrl=feed["html_url"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

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
    base = base_url.rstrip("/")
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    if updated is not None:
        from email.utils import format_datetime

        etree.SubElement(head, "dateModified").text = format_datetime(updated.astimezone(dt.timezone.utc),
                                                                      usegmt=True)
    body = etree.SubElement(root, "body")
    group = etree.SubElement(body, "outline", text=title, title=title)
    etree.SubElement(group, "outline", type="rss", text=f"{title} (all categories)",
                     title=f"{title} (all categories)", xmlUrl=f"{base}/feed.xml", htmlUrl=f"{base}/")
    for cat in categories:
        query = urlencode({"category": cat})
        etree.SubElement(group, "outline", type="rss", text=f"{title}: {cat}", title=f"{title}: {cat}",
                         category=cat, xmlUrl=f"{base}/feed.xml?{query}", htmlUrl=f"{base}/?{query}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

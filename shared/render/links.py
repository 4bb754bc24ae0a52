"""Where the page's links point: the web service's routes, or the publisher's files.

One page template serves both. `Links.web(here)` gives root-relative URLs of the HTTP contract
(/day/YYYY-MM-DD, /feed.xml?category=cs.LG, /static/style.css, /feeds.opml) and the controls that
need the server (filter form, sorting, compact view). `Links.files(depth, days)` gives links
relative to a file in OUTPUT_DIR (index.html at depth 0, day/YYYY-MM-DD.html at depth 1) that
resolve among the published files, so the page works opened from disk or from any static host:
a day is linked only when its page file exists (`days`), and nothing that needs a server
(form, sorting, OPML, filtered feeds) is shown.

Feedback ("more like this" / "less like this", shared.feedback_links): the served page gets POST
forms to /feedback with a signed token; a published file gets links to the absolute
<feeds.public_url>/feedback?t= confirmation page when that URL is configured, else nothing (a
form in a file opened from disk could not work).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

SORTS = ("score", "category", "date")  # the page's ?sort= values (first: the default)
VIEWS = ("full", "compact")             # the page's ?view= values
FEEDS = (("feed.xml", "RSS", "application/rss+xml"), ("atom.xml", "Atom", "application/atom+xml"),
         ("feed.json", "JSON Feed", "application/feed+json"))


def _query(params: dict) -> str:
    clean = {k: v for k, v in params.items() if v is not None and v != ""}
    return "?" + urlencode(clean) if clean else ""


@dataclass(frozen=True)
class Links:
    served: bool                       # True: the web service; False: files in OUTPUT_DIR
    root: str                          # "/" or "/p/<slug>/" (web), "" or "../" (files)
    here: str = "/"                    # this page's path (web): target of the form and the view links
    days: frozenset | None = None      # files: the days that have a page file; None: every day
    key: str | None = None             # a private profile's key: on its feed links, to subscribe
    feedback: object | None = None     # shared.feedback_links.FeedbackLinks of the profile, if any

    @classmethod
    def web(cls, here: str = "/", root: str = "/", key: str | None = None, feedback=None) -> "Links":
        return cls(served=True, root=root, here=here, key=key, feedback=feedback)

    @classmethod
    def files(cls, depth: int = 0, days=(), feedback=None) -> "Links":
        return cls(served=False, root="../" * depth, here="", days=frozenset(str(d) for d in days),
                   feedback=feedback)

    def home(self) -> str:
        return self.root if self.served else self.root + "index.html"

    def css(self) -> str:
        return "/static/style.css" if self.served else self.root + "static/style.css"

    def file(self, name: str) -> str:
        return self.root + name

    def has_day(self, day) -> bool:
        return self.days is None or str(day) in self.days

    def day(self, day) -> str:
        day = day.isoformat() if isinstance(day, dt.date) else str(day)
        return f"{self.root}day/{day}" if self.served else f"{self.root}day/{day}.html"

    def feeds(self, filters: dict | None = None) -> list[dict]:
        """The three feeds (with the active filter's query when served)."""
        params = {k: v for k, v in (filters or {}).items() if k != "limit"}
        query = _query({**params, "key": self.key}) if self.served else ""
        return [{"href": self.root + name + query, "label": label, "type": mime} for name, label, mime in FEEDS]

    def opml(self) -> str | None:
        return self.root + "feeds.opml" if self.served else None

    def rate(self, paper_id: str) -> dict | None:
        """The feedback controls of one paper: {"form": True, "action", "up", "down"} (tokens,
        served page), {"form": False, "up", "down"} (absolute links, files), or None."""
        fb = self.feedback
        if fb is None:
            return None
        if self.served:
            return {"form": True, "action": fb.action, "up": fb.token(paper_id, "up"),
                    "down": fb.token(paper_id, "down")}
        up = fb.url(paper_id, "up")
        return {"form": False, "up": up, "down": fb.url(paper_id, "down")} if up else None

    def view(self, filters: dict, **params) -> str:
        """This page with `filters` and the view parameters (sort, view) given."""
        merged = {**filters, **params}
        return self.here + _query(merged)

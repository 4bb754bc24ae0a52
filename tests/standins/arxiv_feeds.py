"""Data side of the local arXiv stand-in: a recorded announcement day, re-served the way
rss.arxiv.org would serve it for any requested category set, and a query-API dataset built from
the same papers. Pure functions over bytes; the HTTP side lives in tests/standins/arxiv.py.
"""
from __future__ import annotations

import copy
import datetime as dt
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

DATA = Path(__file__).resolve().parents[1] / "data" / "arxiv"
DEFAULT_DAY = DATA / "rss" / "rss2_2024-11-28_all20archives_1504items.xml"
ARXIV = "http://arxiv.org/schemas/atom"
ARCHIVES = ("astro-ph", "cond-mat", "cs", "econ", "eess", "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th",
            "math", "math-ph", "nlin", "nucl-ex", "nucl-th", "physics", "q-bio", "q-fin", "quant-ph", "stat",
            "test")
TYPE_ORDER = {"new": 0, "cross": 1, "replace": 2, "replace-cross": 3}
FEED_CAP = 2000
DESC_RE = re.compile(r"^arXiv:(\S+?)v(\d+) Announce Type: ([\w-]+) \nAbstract: (.*)\Z", re.S)


@dataclass
class DayItem:
    element: etree._Element
    id: str
    version: int
    type: str             # as recorded: relative to the recorded request (Day.requested)
    categories: list[str]
    abstract: str
    event: str = ""       # what happened to the paper that day: SUBMITTED, REPLACED or CROSS_LISTED


@dataclass
class Day:
    pub_date: str
    build_date: str
    requested: frozenset[str] = frozenset()  # the archives/categories the recording was made for
    items: list[DayItem] = field(default_factory=list)

    @property
    def categories(self) -> set[str]:
        return {c.lower() for it in self.items for c in it.categories}


def load_day(path: Path | str) -> Day:
    """A recorded RSS day. Each item's event is read from its recorded type (see `event_of`);
    a recording that contradicts arXiv's documented rule raises ValueError."""
    root = etree.fromstring(Path(path).read_bytes())
    channel = root.find("channel")
    title = (channel.findtext("title") or "").removesuffix(" updates on arXiv.org")
    requested = frozenset(part.strip().lower() for part in title.split(",") if part.strip())
    day = Day(channel.findtext("pubDate"), channel.findtext("lastBuildDate"), requested)
    for el in channel.iterchildren("item"):
        m = DESC_RE.match(el.findtext("description") or "")
        if not m:
            continue
        item = DayItem(el, m.group(1), int(m.group(2)), m.group(3), [c.text for c in el.iterchildren("category")],
                       m.group(4))
        item.event = event_of(item.type, listed_in(item.categories[0], requested), item.version)
        day.items.append(item)
    return day


# -- announce types: from the recording, not from the code under test -------------------------
# arXiv's documented listing rule (tests/data/arxiv/README.md, arXiv's RSS documentation), written
# here as a table of what happened to a paper and whether its primary category is in the
# requested set. A recorded feed states each paper's type for the set it was recorded for; the
# event is read back from that, and only a request for another set needs the table.
SUBMITTED, REPLACED, CROSS_LISTED = "submitted", "replaced", "cross-listed"
LISTING = {
    (SUBMITTED, True): "new",          # first announcement, primary in the set
    (SUBMITTED, False): "cross",       # first announcement, primary elsewhere
    (REPLACED, True): "replace",       # a new version, primary in the set
    (REPLACED, False): "replace-cross",
    (CROSS_LISTED, True): "cross",     # an older paper newly cross-listed: a cross in every feed
    (CROSS_LISTED, False): "cross",
}


def listed_in(category: str, requested) -> bool:
    """Is `category` covered by a feed request? A request names archives ('cs': every cs.*)
    or categories ('cs.LG'), case-insensitively, like rss.arxiv.org's URLs."""
    category = category.lower()
    return category in requested or category.partition(".")[0] in requested


def event_of(recorded_type: str, primary_in_recording: bool, version: int) -> str:
    """Read the day's event back from a recorded type. A 'cross' whose primary is in the
    recorded set, or that is not a first version, is an older paper's new cross-listing; a
    first-version 'cross' from elsewhere is a submission to another archive (the recording cannot
    tell it from a cross-listing; both are a 'cross' in every feed that omits its primary)."""
    if recorded_type == "cross":
        return SUBMITTED if (not primary_in_recording and version == 1) else CROSS_LISTED
    event = {"new": SUBMITTED, "replace": REPLACED, "replace-cross": REPLACED}.get(recorded_type)
    if event is None or LISTING[(event, primary_in_recording)] != recorded_type \
            or (event == SUBMITTED) != (version == 1):
        raise ValueError(f"recorded type {recorded_type!r} (v{version}, primary in the recorded set: "
                         f"{primary_in_recording}) contradicts arXiv's documented rule")
    return event


def bad_query_part(known: Day | set[str], parts: list[str]) -> str | None:
    """arXiv's message for the first unknown archive/category in the request, else None.
    `known`: the categories that exist (lower case), or a Day (its items' categories)."""
    known = known.categories if isinstance(known, Day) else known
    for part in parts:
        archive, _, sub = part.lower().partition(".")
        if archive not in ARCHIVES:
            return f"Bad archive '{part}'. Valid archive names are: {', '.join(ARCHIVES)}."
        if sub and part.lower() not in known:
            return f"Bad category '{part}'."
    return None


def announce_type(day: Day, item: DayItem, wanted: set[str]) -> str:
    """The type arXiv lists this item with in the feed for `wanted`: the recorded type itself for
    the recorded request, else the documented rule applied to the recorded event."""
    if wanted == day.requested:
        return item.type
    return LISTING[(item.event, listed_in(item.categories[0], wanted))]


def _header(q: str, pub_date: str, build_date: str) -> str:
    title = ", ".join(q.split("+"))
    return ("<?xml version='1.0' encoding='UTF-8'?>\n"
            '<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'version="2.0">\n  <channel>\n'
            f"    <title>{escape(title)} updates on arXiv.org</title>\n"
            f"    <link>http://rss.arxiv.org/rss/{escape(q)}</link>\n"
            f"    <description>{escape(title)} updates on the arXiv.org e-print archive.</description>\n"
            f'    <atom:link href="http://rss.arxiv.org/rss/{escape(q)}" rel="self" type="application/rss+xml"/>\n'
            "    <docs>http://www.rssboard.org/rss-specification</docs>\n    <language>en-us</language>\n"
            f"    <lastBuildDate>{build_date}</lastBuildDate>\n"
            "    <managingEditor>rss-help@arxiv.org</managingEditor>\n"
            f"    <pubDate>{pub_date}</pubDate>\n"
            "    <skipDays>\n      <day>Saturday</day>\n      <day>Sunday</day>\n    </skipDays>\n")


def render_feed(day: Day, q: str, empty: bool = False) -> bytes:
    """The RSS 2.0 feed arXiv would serve for /rss/<q> on this day (q already validated)."""
    wanted = {p.lower() for p in q.split("+")}
    chosen = []
    for item in [] if empty else day.items:
        if any(listed_in(c, wanted) for c in item.categories):
            chosen.append((announce_type(day, item, wanted), item))
    chosen.sort(key=lambda pair: (TYPE_ORDER[pair[0]], pair[1].id))
    parts = [_header(q, day.pub_date, day.build_date)]
    for kind, item in chosen[:FEED_CAP]:
        el = copy.deepcopy(item.element)
        el.find("description").text = f"arXiv:{item.id}v{item.version} Announce Type: {kind} \nAbstract: {item.abstract}"
        el.find(f"{{{ARXIV}}}announce_type").text = kind
        parts.append("    " + etree.tostring(el, encoding="unicode").strip() + "\n")
    parts.append("  </channel>\n</rss>")
    return "".join(parts).encode()


def render_feed_error(q: str, message: str, build_date: str, pub_date: str) -> bytes:
    """The error channel arXiv serves (with HTTP 400) for an unknown archive or category."""
    return ("<?xml version='1.0' encoding='UTF-8'?>\n"
            '<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'version="2.0">\n  <channel>\n'
            f"    <title>Feed error for query: http://rss.arxiv.org/rss/{escape(q)}</title>\n"
            f"    <link>http://rss.arxiv.org/rss/{escape(q)}</link>\n"
            f"    <description>{escape(message)}</description>\n"
            f'    <atom:link href="http://rss.arxiv.org/rss/{escape(q)}" rel="self" type="application/rss+xml"/>\n'
            "    <docs>http://www.rssboard.org/rss-specification</docs>\n    <language>en-us</language>\n"
            f"    <lastBuildDate>{build_date}</lastBuildDate>\n"
            "    <managingEditor>rss-help.arxiv.org</managingEditor>\n"
            f"    <pubDate>{pub_date}</pubDate>\n  </channel>\n</rss>").encode()


def write_replacement_day(src: Path | str, dst: Path | str, bump: dict[str, int], pub_date: str) -> Path:
    """A second announcement day made from `src`: the papers in `bump` ({id: new version}) come
    back as replacements at that version; the others are dropped. Used for version tests."""
    root = etree.fromstring(Path(src).read_bytes())
    channel = root.find("channel")
    channel.find("pubDate").text = pub_date
    for el in list(channel.iterchildren("item")):
        desc = el.find("description")
        m = DESC_RE.match(desc.text or "")
        if not m or m.group(1) not in bump:
            channel.remove(el)
            continue
        version = bump[m.group(1)]
        desc.text = f"arXiv:{m.group(1)}v{version} Announce Type: replace \nAbstract: {m.group(4)}"
        el.find("guid").text = f"oai:arXiv.org:{m.group(1)}v{version}"
        el.find(f"{{{ARXIV}}}announce_type").text = "replace"
        el.find("pubDate").text = pub_date
    Path(dst).write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    return Path(dst)


def write_shifted_day(src: Path | str, dst: Path | str, yymm: str = "2412") -> Path:
    """A copy of `src` whose new-style ids all move to the `yymm` prefix ('2411.17700' ->
    '2412.17700'), so none collides with the recorded day; old-style ids and would-be duplicates
    are dropped. Used to give the query API papers the feed does not list (backfill tests)."""
    root = etree.fromstring(Path(src).read_bytes())
    channel = root.find("channel")
    seen: set[str] = set()
    for el in list(channel.iterchildren("item")):
        desc = el.find("description")
        m = DESC_RE.match(desc.text or "")
        new_id = f"{yymm}.{m.group(1).split('.', 1)[1]}" if m and re.fullmatch(r"\d{4}\.\d{5}", m.group(1)) else None
        if new_id is None or new_id in seen:
            channel.remove(el)
            continue
        seen.add(new_id)
        desc.text = f"arXiv:{new_id}v{m.group(2)} Announce Type: {m.group(3)} \nAbstract: {m.group(4)}"
        el.find("guid").text = f"oai:arXiv.org:{new_id}v{m.group(2)}"
        el.find("link").text = f"https://arxiv.org/abs/{new_id}"
    Path(dst).write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    return Path(dst)


# -- query API ---------------------------------------------------------------------------------
API_ID_RE = re.compile(r"^((?:\d{4}\.\d{4,5})|(?:[a-z][a-z-]*(?:\.[A-Za-z-]+)?/\d{7}))(?:v(\d+))?$")
API_BASE_DAY = dt.datetime(2024, 11, 21, tzinfo=dt.timezone.utc)
API_DAYS = 7


@dataclass
class ApiPaper:
    id: str
    version: int
    title: str
    abstract: str
    authors: list[str]
    categories: list[str]
    doi: str | None
    journal_ref: str | None
    submitted: dt.datetime  # when this version was submitted (what submittedDate searches)


def api_dataset(day: Day) -> list[ApiPaper]:
    """The day's papers with deterministic synthetic submission times spread over API_DAYS days
    from API_BASE_DAY (crc32 of the id), sorted by submission time then id."""
    papers = []
    for item in day.items:
        h = zlib.crc32(item.id.encode())
        when = API_BASE_DAY + dt.timedelta(days=h % API_DAYS, seconds=(h >> 8) % 86400)
        creator = item.element.findtext("{http://purl.org/dc/elements/1.1/}creator") or ""
        authors = [re.sub(r"\s*\([^()]*\)", "", a).strip() for a in re.split(r",(?![^()]*\))", creator)]
        papers.append(ApiPaper(item.id, item.version, " ".join((item.element.findtext("title") or "").split()),
                               item.abstract, [a for a in authors if a], item.categories,
                               item.element.findtext(f"{{{ARXIV}}}DOI"),
                               item.element.findtext(f"{{{ARXIV}}}journal_reference"), when))
    papers.sort(key=lambda p: (p.submitted, p.id))
    return papers


def _stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry(p: ApiPaper) -> str:
    published = p.submitted - dt.timedelta(days=30 * (p.version - 1))  # v1's date
    out = [f"  <entry>\n    <id>http://arxiv.org/abs/{p.id}v{p.version}</id>\n",
           f"    <title>{escape(p.title)}</title>\n    <updated>{_stamp(p.submitted)}</updated>\n",
           f'    <link href="https://arxiv.org/abs/{p.id}v{p.version}" rel="alternate" type="text/html"/>\n',
           f'    <link href="https://arxiv.org/pdf/{p.id}v{p.version}" rel="related" type="application/pdf" title="pdf"/>\n',
           f"    <summary>{escape(p.abstract)}</summary>\n"]
    out += [f'    <category term={quoteattr(c)} scheme="http://arxiv.org/schemas/atom"/>\n' for c in p.categories]
    out.append(f"    <published>{_stamp(published)}</published>\n")
    out.append(f"    <arxiv:primary_category term={quoteattr(p.categories[0])}/>\n")
    if p.journal_ref:
        out.append(f"    <arxiv:journal_ref>{escape(p.journal_ref)}</arxiv:journal_ref>\n")
    out += [f"    <author>\n      <name>{escape(a)}</name>\n    </author>\n" for a in p.authors]
    if p.doi:
        out.append(f"    <arxiv:doi>{escape(p.doi)}</arxiv:doi>\n"
                   f'    <link href="https://doi.org/{escape(p.doi)}" rel="related" title="doi"/>\n')
    out.append("  </entry>\n")
    return "".join(out)


def render_api(papers: list[ApiPaper], total: int, start: int, per_page: int, echo: str) -> bytes:
    """One page in the current backend's Atom format (opensearch values echo the request)."""
    now = _stamp(dt.datetime.now(dt.timezone.utc))
    head = ("<?xml version='1.0' encoding='UTF-8'?>\n"
            '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
            'xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">\n'
            f"  <id>https://arxiv.org/api/{zlib.crc32(echo.encode()):08x}</id>\n"
            f"  <title>arXiv Query: {escape(echo)}</title>\n  <updated>{now}</updated>\n"
            f'  <link href="https://arxiv.org/api/query?{escape(echo)}" type="application/atom+xml"/>\n'
            f"  <opensearch:itemsPerPage>{per_page}</opensearch:itemsPerPage>\n"
            f"  <opensearch:totalResults>{total}</opensearch:totalResults>\n"
            f"  <opensearch:startIndex>{start}</opensearch:startIndex>\n")
    return (head + "".join(_entry(p) for p in papers) + "</feed>\n").encode()


def render_api_error(message: str) -> bytes:
    """The HTTP 400 error feed of the current backend."""
    slug = re.sub(r"\W+", "_", message).strip("_")
    now = _stamp(dt.datetime.now(dt.timezone.utc))
    return ("<?xml version='1.0' encoding='UTF-8'?>\n"
            '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
            'xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">\n'
            "  <id>https://arxiv.org/</id>\n  <title>arXiv Search Results</title>\n"
            f"  <updated>{now}</updated>\n  <opensearch:itemsPerPage>1</opensearch:itemsPerPage>\n"
            "  <opensearch:totalResults>1</opensearch:totalResults>\n"
            "  <opensearch:startIndex>0</opensearch:startIndex>\n  <entry>\n"
            f"    <id>https://arxiv.org/api/errors#{slug}</id>\n    <title>Error</title>\n"
            f"    <updated>{now}</updated>\n"
            f'    <link href="https://arxiv.org/api/errors#{slug}" rel="alternate" type="text/html"/>\n'
            f"    <summary>{escape(message)}</summary>\n"
            "    <author>\n      <name>arXiv api core</name>\n    </author>\n  </entry>\n</feed>\n").encode()


def _top_level_and(query: str) -> list[str]:
    """The query split at AND outside parentheses."""
    parts, depth, start = [], 0, 0
    for m in re.finditer(r"[()]|\s+AND\s+", query):
        if m.group() == "(":
            depth += 1
        elif m.group() == ")":
            depth -= 1
        elif depth == 0:
            parts.append(query[start:m.start()])
            start = m.end()
    parts.append(query[start:])
    return [p.strip() for p in parts]


def _cat_match(cat: str, categories: list[str]) -> bool:
    """`cat` ('cs.lg', or 'cs.*' for a whole archive, as arXiv's search allows) matches a paper."""
    if cat.endswith(".*"):
        return any(c.lower().startswith(cat[:-1]) for c in categories)
    return cat in (c.lower() for c in categories)


def api_query(papers: list[ApiPaper], params: dict[str, str]) -> tuple[list[ApiPaper], int, int, int]:
    """Select like the classic API: (page, total, start, max_results). Raises ValueError with
    arXiv's message for bad parameters or ids."""
    def integer(name: str, default: int) -> int:
        raw = params.get(name, str(default))
        if not re.fullmatch(r"-?\d+", raw.strip()):
            raise ValueError(f"{name} must be an integer")
        if int(raw) < 0:
            raise ValueError(f"{name} must be non-negative")
        return int(raw)

    start, size = integer("start", 0), integer("max_results", 10)
    query, id_list = params.get("search_query", "").strip(), params.get("id_list", "").strip()
    if not query and not id_list:
        raise ValueError("Either a search_query or id_list must be specified for the classic API.")
    chosen = papers
    if id_list:
        wanted = {}
        for raw in id_list.split(","):
            m = API_ID_RE.match(raw.strip())
            if not m:
                raise ValueError(f"incorrect id format for {raw.strip()}")
            wanted[m.group(1)] = int(m.group(2)) if m.group(2) else None
        chosen = [p for p in chosen if p.id in wanted and wanted[p.id] in (None, p.version)]
    if query:
        for term in _top_level_and(query):
            m = re.fullmatch(r"submittedDate:\[(\d{12}) TO (\d{12})\]", term)
            if m:
                lo, hi = (dt.datetime.strptime(v, "%Y%m%d%H%M").replace(tzinfo=dt.timezone.utc)
                          for v in m.groups())
                hi += dt.timedelta(seconds=59)
                chosen = [p for p in chosen if lo <= p.submitted <= hi]
                continue
            # `cat:X` or a parenthesised `(cat:X OR cat:Y ...)`, as the API's grammar allows.
            inner = term[1:-1].strip() if term.startswith("(") and term.endswith(")") else term
            cats = []
            for alt in re.split(r"\s+OR\s+", inner):
                m = re.fullmatch(r"cat:(\S+)", alt.strip())
                if not m:
                    raise ValueError(f"unsupported query term for the stand-in: {term}")
                cats.append(m.group(1).lower())
            chosen = [p for p in chosen if any(_cat_match(c, p.categories) for c in cats)]
    if params.get("sortOrder") == "descending":
        chosen = chosen[::-1]
    return chosen[start:start + size], len(chosen), start, size

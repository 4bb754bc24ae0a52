"""A PDF's text in reading order, page by page, with pypdfium2 (PDFium: Apache-2.0/BSD-3).

PDFium returns a page's characters in content-stream order, which is the reading order of what
TeX and most word processors write. Some producers draw two-column pages line by line across
both columns; read in stream order, such a page interleaves the columns. `page_text` therefore
looks at where the text is: when a page has two columns (a vertical gutter near the middle that
no column-sized text run crosses, with most text on either side of it), it reads the page in
horizontal bands, top to bottom (a full-width band, e.g. a table* or a title, as one), and each
column band left column first, then the right one. Single-column pages are read as they are.
"""
from __future__ import annotations

from shared.errors import PermanentError

MAX_PAGES = 300  # a longer "paper" (a thesis, proceedings) is read up to here


def page_texts(pdf_bytes: bytes) -> tuple[list[str], list[tuple[int, str]]]:
    """([text of each page], [(level, title)] of the PDF's outline, possibly empty). Raises
    PermanentError (one line) when PDFium cannot open the file."""
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(pdf_bytes)
    except Exception as exc:  # PdfiumError: "Failed to load document (PDFium: Data format error)."
        reason = " ".join(str(exc).split())[:150] or type(exc).__name__
        raise PermanentError(f"cannot read PDF: {reason}") from None
    try:
        pages = []
        for index in range(min(len(doc), MAX_PAGES)):
            page = doc[index]
            try:
                textpage = page.get_textpage()
                try:
                    pages.append(page_text(textpage, *page.get_size()))
                finally:
                    textpage.close()
            except Exception:  # one unreadable page does not lose the others
                pages.append("")
            finally:
                page.close()
        outline = []
        try:
            for item in doc.get_toc(max_depth=4):
                title = " ".join(str(item.get_title() if hasattr(item, "get_title") else item.title).split())
                if title:
                    outline.append((int(item.level), title))
        except Exception:  # a broken outline is only a missing hint
            outline = []
        return pages, outline
    finally:
        doc.close()


def page_text(textpage, width: float, height: float) -> str:
    """One page's text in reading order (module docstring)."""
    runs = [textpage.get_rect(i) for i in range(textpage.count_rects())]
    # Vertical runs (the arXiv side stamp, rotated table headers) say nothing about columns.
    rects = [r for r in runs if not ((r[3] - r[1]) > 3 * (r[2] - r[0]) and (r[3] - r[1]) > 40)]
    gutter = find_gutter(rects, width)
    if gutter is None:
        return textpage.get_text_range()
    layout = bands(rects, gutter)

    def region(rect) -> int:
        left, bottom, right, top = rect
        y = (bottom + top) / 2
        k = next((i for i, band in enumerate(layout) if y >= band[2]), len(layout) - 1)
        return 2 * k + (0 if layout[k][0] or (left + right) / 2 < gutter else 1)

    # A run is a stretch of consecutive characters on one line: find its first character (one
    # lookup per run, not per character), so each stretch of the page's character order gets
    # the region (band and column) of the run it starts with. The page is then read region by
    # region, each in stream order, with get_text_range, which keeps PDFium's spaces and line
    # breaks between words.
    starts: dict[int, int] = {}
    for rect in runs:
        index = textpage.get_index(rect[0] + min(1.5, (rect[2] - rect[0]) / 2), (rect[1] + rect[3]) / 2, 1.0, 1.0)
        if index is not None and index >= 0:
            starts.setdefault(index, region(rect))
    total = textpage.count_chars()
    if not starts:
        return textpage.get_text_range()
    edges = sorted(starts)
    bounds = [0] + edges[1:] + [total]  # characters before the first run join it
    pieces = [(starts[e], a, b) for e, a, b in zip(edges, bounds, bounds[1:]) if b > a]
    out: list[str] = []
    end = 0
    for _, a, b in sorted(pieces, key=lambda p: (p[0], p[1])):
        text = textpage.get_text_range(a, b - a)
        if out and a != end and not out[-1].endswith(("\n", " ")):
            out.append("\n")  # a jump in stream order starts a new line
        out.append(text)
        end = b
    return "".join(out)


def find_gutter(rects, width: float) -> float | None:
    """The x of the gap between two columns, or None when the page is not two-column.

    Column-sized runs (a quarter to half the page wide: not full-width lines, not figure labels or
    page numbers) must leave a vertical strip in the middle 40% of the page that almost none of
    them crosses (a wide caption may), and the text left and right of it (by run width, so a big
    title does not outweigh the body) must each be a fifth of the page's and together most of it."""
    lo, hi = int(0.3 * width), int(0.7 * width)
    narrow = [r for r in rects if 0.25 * width <= r[2] - r[0] < 0.55 * width]
    if hi - lo < 10 or len(narrow) < 10:
        return None
    delta = [0] * (hi - lo + 2)
    for left, _, right, _ in narrow:
        a, z = max(int(left), lo), min(int(right) + 1, hi)
        if z > a:
            delta[a - lo] += 1
            delta[z - lo] -= 1
    counts, level = [], 0
    for d in delta[:hi - lo]:
        level += d
        counts.append(level)
    least = min(counts)
    if least > max(1, len(narrow) // 20):
        return None
    best, start = (0, 0), None
    for x, c in enumerate(counts + [least + 1]):
        if c == least and start is None:
            start = x
        elif c != least and start is not None:
            best = max(best, (x - start, start))
            start = None
    if best[0] < 4:
        return None
    gutter = lo + best[1] + best[0] / 2
    weight = {"left": 0.0, "right": 0.0, "span": 0.0}
    for left, _, right, _ in rects:
        weight["left" if right <= gutter else "right" if left >= gutter else "span"] += right - left
    total = sum(weight.values()) or 1.0
    if weight["left"] < 0.2 * total or weight["right"] < 0.2 * total or weight["span"] > 0.4 * total:
        return None
    return gutter


def bands(rects, gutter: float) -> list[tuple[bool, float, float]]:
    """[(full width, top, bottom)] top to bottom. Runs crossing the gutter (a title, a table*, a
    wide caption, figure labels) make full-width zones, grown by every column run that overlaps
    them vertically (an author block beside a centred name); between two zones lies a two-column
    band."""
    def crossing(r) -> bool:
        return r[0] < gutter - 1 and r[2] > gutter + 1

    def overlaps(r, z) -> bool:  # 2 pt of slack: the boxes of adjacent lines touch
        return r[1] + 2 < z[0] and r[3] - 2 > z[1]

    zones: list[list[float]] = []  # [top, bottom], disjoint

    def add(top: float, bottom: float) -> None:
        nonlocal zones
        hit = [z for z in zones if bottom < z[0] and top > z[1]]
        zones = [z for z in zones if z not in hit]
        zones.append([max([top] + [z[0] for z in hit]), min([bottom] + [z[1] for z in hit])])

    for r in rects:
        if crossing(r):
            add(r[3], r[1])
    columns = [r for r in rects if not crossing(r)]
    changed = True
    while changed:
        changed, rest = False, []
        for r in columns:
            if any(overlaps(r, z) for z in zones):
                add(r[3], r[1])
                changed = True
            else:
                rest.append(r)
        columns = rest
    zones.sort(key=lambda z: -z[0])
    groups: dict[int, list] = {}
    for r in columns:  # the gap a run lies in: the number of zones above it
        groups.setdefault(sum(1 for z in zones if z[1] >= r[3] - 2), []).append(r)
    out: list[tuple[bool, float, float]] = []
    for i in range(len(zones) + 1):
        if i in groups:
            out.append((False, max(r[3] for r in groups[i]) + 1, min(r[1] for r in groups[i]) - 1))
        if i < len(zones):
            out.append((True, zones[i][0] + 1, zones[i][1] - 1))
    return out

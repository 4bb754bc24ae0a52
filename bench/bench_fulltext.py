"""Benchmark full-text input on the recorded papers (tests/data/papers/: one arXiv HTML rendering,
three arXiv PDFs, all CC BY). Run from the repository root:

    .venv/bin/python bench/bench_fulltext.py [--budget 12000] [--tight 5000]

For each source and extractor, per paper: extraction time (the file already downloaded; best of
3 runs, the text's sectioning included), the
model's input tokens (the whole prompt, estimated as the summarizer does, within --budget), and
- HTML: the share of the numbers in its results/experiments sections and its tables (found from
  the HTML structure: <section>s whose heading says results/experiments/evaluation, every
  figure.ltx_table) that reach the model input;
- PDFs: which of the paper's sections (from the PDF's own outline, with their text from the
  page text) reach the input, results and conclusion above all; and for two-column pages, the
  share of adjacent lines of a column (in pdfminer.six's layout analysis) that stay adjacent;
  and the same share on a made PDF whose two columns are drawn row by row (stream order is not
  reading order there, as with some producers).
The same sectioning and selection (services/summarizer) runs on every extractor's text, so the
rows compare the extractors; "front cut" is the old behaviour (pypdf's text cut from the front).
Targets at 12,000 tokens: HTML >= 90 % of result numbers; every PDF keeps results and conclusion;
extraction < 2 s per paper, the 39-page one included. Extractors not installed are skipped
(pdftext, pdf_oxide: `pip install pdftext pdf_oxide` to include them).
"""
from __future__ import annotations

import argparse
import io
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from services.summarizer import fulltext_html, fulltext_pdf, pdf_layout, prompt  # noqa: E402
from services.summarizer.llm import cut_to_tokens, estimate_messages_tokens  # noqa: E402
from services.summarizer.sections import Section, select, strip_number  # noqa: E402

PAPERS = Path(__file__).resolve().parent.parent / "tests" / "data" / "papers"
ABSTRACT = "(the abstract from arXiv's feed) " + "We study the problem and report results. " * 30
# Which outline entries hold each PDF's results and its conclusion (read off the papers).
KEY_SECTIONS = {
    "2312.17524v1": {"results": ["Empirical Results", "Experimental Setup", "Result Analysis"],
                     "conclusion": ["Conclusion"]},
    "2605.13866v1": {"results": ["Asymmetric effects across marginalised groups",
                                 "Cross-occupation variation and human comparison",
                                 "Mechanisms of demographic effects"], "conclusion": ["Discussion"]},
    "2605.16085v1": {"results": ["5 Experiments", "5.1 Experimental Setup", "5.2 Results and Analysis",
                                 "5.3 Ablation Study"], "conclusion": ["7 Conclusion and Open Questions"]},
}


BACK_MATTER = {"references", "bibliography", "acknowledgements", "acknowledgments", "methods", "appendix"}


def norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def prompt_tokens(title: str, body: str) -> int:
    return estimate_messages_tokens(prompt.build_messages(title, body, "zh"))


def room(title: str, budget: int) -> int:
    return budget - prompt_tokens(title, "") - 16  # as services/summarizer/handlers._messages


def with_abstract(secs: list[Section]) -> list[Section]:
    if any(s.kind == "abstract" and s.blocks for s in secs):
        return secs
    return [Section("Abstract", "abstract", [("p", ABSTRACT)]), *secs]


# --- extractors: PDF bytes -> page texts --------------------------------------------------------

class quiet:
    """Silence an extractor's own warnings on stderr (pypdf logs, pdf_oxide prints from Rust)."""

    def __enter__(self):
        import logging
        import os

        logging.getLogger("pypdf").setLevel(logging.ERROR)
        sys.stderr.flush()
        self.saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc):
        import os

        os.dup2(self.saved, 2)
        os.close(self.saved)


def timed(fn, *args, runs: int = 3):
    """(result, best time of `runs`): a shared 2-core machine is noisy."""
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        with quiet():
            result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return result, best


def ex_pdfium_layout(data: bytes) -> list[str]:
    return pdf_layout.page_texts(data)[0]


def ex_pdfium_stream(data: bytes) -> list[str]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(data)
    out = [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    doc.close()
    return out


def ex_pypdf(data: bytes, mode: str = "plain") -> list[str]:
    from pypdf import PdfReader

    return [p.extract_text(extraction_mode=mode) or "" for p in PdfReader(io.BytesIO(data)).pages]


def ex_pdfminer(data: bytes) -> list[str]:
    from pdfminer.high_level import extract_text

    return extract_text(io.BytesIO(data)).split("\f")


def ex_pdftext(data: bytes) -> list[str]:
    import tempfile

    from pdftext.extraction import paginated_plain_text_output

    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(data)
        f.flush()
        return paginated_plain_text_output(f.name, sort=True)


def ex_oxide(data: bytes) -> list[str]:
    import tempfile

    import pdf_oxide

    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(data)
        f.flush()
        doc = pdf_oxide.PdfDocument(f.name)
        return [doc.extract_text(i) for i in range(doc.page_count())]


EXTRACTORS = [  # name, function, licence
    ("pypdfium2+layout (arxiv-bot)", ex_pdfium_layout, "Apache-2.0/BSD-3"),
    ("pypdfium2 stream order", ex_pdfium_stream, "Apache-2.0/BSD-3"),
    ("pypdf", ex_pypdf, "BSD-3"),
    ("pypdf layout mode", lambda d: ex_pypdf(d, "layout"), "BSD-3"),
    ("pdfminer.six", ex_pdfminer, "MIT"),
    ("pdftext", ex_pdftext, "Apache-2.0"),
    ("pdf_oxide", ex_oxide, "MIT/Apache-2.0"),
]


# --- ground truth -------------------------------------------------------------------------------

def outline_sections(data: bytes) -> list[tuple[str, list[str]]]:
    """[(outline title, 8-word samples of its text)] from the page text between outline headings."""
    pages, outline = pdf_layout.page_texts(data)
    lines = fulltext_pdf.clean_lines(pages)
    keys = [norm(strip_number(t)) for _, t in outline]
    starts, pos = [], 0
    for key in keys:
        for i in range(pos, len(lines)):
            if norm(strip_number(lines[i])) == key:
                starts.append(i)
                pos = i + 1
                break
        else:
            starts.append(None)
    out = []
    for k, (title, start) in enumerate(zip([t for _, t in outline], starts)):
        if start is None:
            out.append((title, []))
            continue
        end = next((s for s in starts[k + 1:] if s is not None), len(lines))
        # The last outline entry ends where the back matter starts (no outline entry of its own).
        end = next((i for i in range(start + 1, end) if norm(lines[i]) in BACK_MATTER), end)
        words = " ".join(lines[start + 1:end]).split()
        step = max(8, len(words) // 12)
        out.append((title, [" ".join(words[i:i + 8]) for i in range(0, max(len(words) - 8, 0), step)]))
    return out


def kept_share(samples: list[str], body: str) -> float | None:
    if not samples:
        return None
    text = norm(body)
    return sum(norm(s) in text for s in samples) / len(samples)


def column_order(data: bytes, text: str) -> float | None:
    """Share of adjacent line pairs of a column (pdfminer.six layout) that stay adjacent in
    `text`; None when the PDF has no two-column page."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTTextContainer, LTTextLine

    seqs = []
    for page in extract_pages(io.BytesIO(data)):
        mid, left, right = page.width / 2, [], []
        for el in page:
            if isinstance(el, LTTextContainer):
                for line in el:
                    t = norm(line.get_text()) if isinstance(line, LTTextLine) else ""
                    if len(t) >= 25:
                        (left if line.x1 <= mid + 5 else right if line.x0 >= mid - 5 else []).append((-line.y1, t))
        if len(left) >= 10 and len(right) >= 10:
            seqs.append([t for _, t in sorted(left)] + [t for _, t in sorted(right)])
    if not seqs:
        return None
    body, ok, total = norm(text), 0, 0
    for seq in seqs:
        pos = [body.find(t[:40]) for t in seq]
        order = [i for p, i in sorted((p, i) for i, p in enumerate(pos) if p >= 0)]
        adjacent = set(zip(order, order[1:]))
        for a in range(len(seq) - 1):
            if pos[a] >= 0 and pos[a + 1] >= 0:
                total += 1
                ok += (a, a + 1) in adjacent
    return ok / max(total, 1)


def html_result_numbers(html: bytes) -> Counter:
    import lxml.html

    doc = lxml.html.document_fromstring(html)
    elements = [s for s in doc.iter("section") if "ltx_section" in (s.get("class") or "")
                and re.search(r"result|experiment|evaluation", " ".join(
                    t.text_content() for t in s.iterchildren() if "ltx_title" in (t.get("class") or "")), re.I)]
    elements += [f for f in doc.iter("figure") if "ltx_table" in (f.get("class") or "")]
    seen, numbers = set(), Counter()
    for el in elements:
        if any(id(a) in seen for a in el.iterancestors()):
            continue
        seen.add(id(el))
        for ann in el.xpath(".//*[local-name()='annotation' or local-name()='annotation-xml']"):
            ann.getparent().remove(ann)  # MathML keeps a TeX copy of every formula: count it once
        numbers.update(re.findall(r"\d+(?:[.,]\d+)*", el.text_content()))
    return numbers


def number_share(numbers: Counter, body: str) -> float:
    got = Counter(re.findall(r"\d+(?:[.,]\d+)*", body))
    return sum(min(n, got[k]) for k, n in numbers.items()) / max(sum(numbers.values()), 1)


# --- runs ---------------------------------------------------------------------------------------

def bench_html(budgets: list[int]) -> None:
    path = PAPERS / "2508.08468v6.html"
    data, title = path.read_bytes(), "Audio-Visual Speech Enhancement: Architectural Design and Deployment Strategies"
    numbers = html_result_numbers(data)
    print(f"\n== HTML {path.stem}: {sum(numbers.values())} numbers in its results/experiments sections and tables")
    print(f"{'extractor':34} {'budget':>7} {'time s':>7} {'input tok':>9} {'result numbers in input':>24}")
    for budget in budgets:
        body, took = timed(lambda: select(with_abstract(fulltext_html.extract(data)), room(title, budget)))
        print(f"{'lxml LaTeXML sections (arxiv-bot)':34} {budget:>7} {took:>7.3f} {prompt_tokens(title, body):>9} "
              f"{number_share(numbers, body):>23.1%}")
        import lxml.html

        flat = " ".join(lxml.html.document_fromstring(data).text_content().split())
        body = cut_to_tokens(flat, room(title, budget))
        print(f"{'page text, front cut':34} {budget:>7} {'':>7} {prompt_tokens(title, body):>9} "
              f"{number_share(numbers, body):>23.1%}")


def bench_pdfs(budgets: list[int]) -> None:
    for path in sorted(PAPERS.glob("*.pdf")):
        data, name = path.read_bytes(), path.stem
        truth = outline_sections(data)
        keys = KEY_SECTIONS[name]
        title = f"Recorded paper {name}"
        print(f"\n== PDF {name} ({len(pdf_layout.page_texts(data)[0])} pages): sections from its outline")
        print(f"{'extractor':30} {'licence':16} {'budget':>6} {'time s':>7} {'input tok':>9} {'results':>8} "
              f"{'concl.':>7} {'2-col order':>11}  sections kept (share of samples)")
        rows = [(n, f, lic) for n, f, lic in EXTRACTORS] + [("front cut (old: pypdf)", None, "BSD-3")]
        outline = pdf_layout.page_texts(data)[1]
        for name_x, fn, lic in rows:
            try:
                if fn is ex_pdfium_layout:  # the summarizer's own path, outline included
                    secs, took = timed(fulltext_pdf.extract, data)
                    pages = fn(data)
                else:  # the same cleaning, sectioning and selection on another extractor's text
                    def run(fn=fn):
                        pages = fn(data) if fn else ex_pypdf(data)
                        lines = fulltext_pdf.clean_lines(pages)
                        return pages, (fulltext_pdf.split_sections(lines, outline) if fn else None)
                    (pages, secs), took = timed(run)
            except ImportError:
                print(f"{name_x:30} {lic:16} not installed")
                continue
            order = column_order(data, "\n".join(pages))
            for budget in budgets:
                if secs is None:
                    body = cut_to_tokens(" ".join("\n".join(pages).split()), room(title, budget))
                else:
                    body = select(with_abstract(secs), room(title, budget))
                shares = {t: kept_share(s, body) for t, s in truth}
                res = min(shares[t] for t in keys["results"] if shares.get(t) is not None)
                con = min(shares[t] for t in keys["conclusion"] if shares.get(t) is not None)
                listing = " ".join(f"{t[:18]}:{'-' if v is None else f'{v:.0%}'}" for t, v in shares.items())
                print(f"{name_x:30} {lic:16} {budget:>6} {took:>7.3f} {prompt_tokens(title, body):>9} "
                      f"{'kept' if res >= 0.8 else f'{res:.0%}':>8} {'kept' if con >= 0.8 else f'{con:.0%}':>7} "
                      f"{'n/a' if order is None else f'{order:.1%}':>11}  {listing}")


def bench_interleaved() -> None:
    """A made two-column PDF whose content stream draws both columns row by row (stream order is
    not reading order): how much of each column each extractor keeps together."""
    from tests.pdfs import two_column_pdf

    left = [f"Left column line {i:02d} of a two column page layout" for i in range(48)]
    right = [f"Right column line {i:02d} of a two column page layout" for i in range(48)]
    data = two_column_pdf(left, right, interleaved=True, pages=4)
    print("\n== made PDF: 4 two-column pages drawn row by row across both columns")
    print(f"{'extractor':30} {'time s':>7} {'2-col order':>11}")
    for name, fn, _ in EXTRACTORS:
        try:
            pages, took = timed(fn, data)
        except ImportError:
            print(f"{name:30} not installed")
            continue
        print(f"{name:30} {took:>7.3f} {column_order(data, chr(10).join(pages)):>11.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=int, default=12000)
    parser.add_argument("--tight", type=int, default=5000, help="a second, tighter budget (0: none)")
    args = parser.parse_args()
    budgets = [args.budget] + ([args.tight] if args.tight else [])
    # Import the heavy modules once before timing anything (a worker has them loaded).
    fulltext_html.extract((PAPERS / "2508.08468v6.html").read_bytes())
    pdf_layout.page_texts((PAPERS / "2312.17524v1.pdf").read_bytes())
    bench_html(budgets)
    bench_pdfs(budgets)
    bench_interleaved()


if __name__ == "__main__":
    main()

"""README.md: the digest in the original bot's layout (see shared/seed/digest-sample.md).

Header (with the announcement day the digest covers), statistics, numbered papers (title link,
authors, category, published, score with one decimal, type, arXiv id with version, matched
terms), the abstract cut near 300 characters at a word boundary with the whole abstract folded
below it in a <details> block when it is longer (as the original folds summaries), the AI summary
in a collapsible block, then configuration, the real schedule and how to use. Why summaries are
missing is said once, in the statistics; a paper repeats it only when its own reason differs.
TeX in titles, names and abstracts is shown as text (shared.render.paper.readable). The
original's Vercel deploy block is dropped.

Every untrusted string goes through md_escape (inline) or summary_html (the summary body, as
sanitised HTML), so nothing from arXiv or the LLM can add HTML, links or close the <details>.
"""
from __future__ import annotations

import datetime as dt
import re

from .paper import matched_line, readable
from .sanitize import cut, md_escape, plain, safe_url, summary_html

SECTION_TITLES = (("contributions", "Main contributions"), ("method", "Method"),
                  ("results", "Results"), ("conclusions", "Conclusions"))


ABSTRACT_CUT = 300


_SOURCES = {"html": "the full text (arXiv HTML)", "pdf": "the full text (PDF)", "abstract": "the abstract"}


def summary_note(paper: dict, default_note: str | None) -> str:
    """Why a paper has no summary, as one line."""
    note = paper.get("summary_note")
    status = paper.get("summary_status")
    if status == "failed":
        return f"AI summary failed: {note or 'unknown reason'}"
    if status == "budget":
        return f"AI summary skipped: daily token budget reached{': ' + note if note else ''}"
    if status == "pending":
        return "AI summary pending"
    if status == "skipped":
        return note or default_note or "AI summary skipped"
    return note or default_note or "No AI summary for this paper (not among the top papers summarized)"


def paper_note(paper: dict, digest_note: str | None) -> str | None:
    """The line a digest shows under a paper without a summary, or None: a failure, the budget or
    a pending summary always; a skip only when its reason is not the digest-wide one (said once at
    the top); nothing for papers below the summarized top (the original shows nothing either)."""
    if paper.get("summary"):
        return None
    status = paper.get("summary_status")
    if status in ("failed", "budget", "pending"):
        return summary_note(paper, None)
    if status == "skipped":
        note = summary_note(paper, None)
        return None if note == digest_note else note
    return None


def summary_markdown(summary: dict) -> str:
    """The summary as Markdown source (TL;DR and the four sections; the raw text if unparsed)."""
    sections = summary.get("sections") or {}
    parts = []
    if summary.get("tldr"):
        parts.append(f"**TL;DR**: {summary['tldr'].strip()}")
    for key, title in SECTION_TITLES:
        if sections.get(key):
            parts.append(f"### {title}\n\n{sections[key].strip()}")
    if len(parts) <= (1 if summary.get("tldr") else 0) and summary.get("text"):
        parts.append(summary["text"].strip())
    return "\n\n".join(parts)


def _html_for_markdown(fragment: str) -> str:
    """Sanitised HTML made safe to sit inside README's <details>: no blank line (which would end
    GitHub's HTML block and let the rest be read as Markdown; in <pre> the entity is a newline)
    and no "[" in text (so nothing can ever be read as a Markdown link)."""
    fragment = re.sub(r"\n[ \t]*(?=\n)", "\n&#10;", fragment.strip())
    return re.sub(r">([^<]*)", lambda m: ">" + m.group(1).replace("[", "&#91;"), fragment)


def _paper_block(n: int, paper: dict, ctx: dict) -> list[str]:
    paper = readable(paper)
    url = safe_url(paper.get("abs_url"))
    title = md_escape(paper.get("title"))
    lines = [f"### {n}. [{title}]({url})" if url else f"### {n}. {title}", ""]
    fields = [
        ("Authors", ", ".join(md_escape(a) for a in paper.get("authors") or [])),
        ("Category", md_escape(paper.get("primary_category"))),
        ("Published", md_escape(paper.get("published") or paper.get("day") or "")),
        ("Score", f"{float(paper.get('score') or 0.0):.1f}"),
        ("Type", md_escape(paper.get("announce_type"))),
        ("ArXiv ID", md_escape(f"{paper.get('id')}v{paper.get('version')}")),
    ]
    matched = matched_line(paper)
    if matched:
        fields.append(("Matched", md_escape(matched)))
    lines += [f"**{name}**: {value}  " for name, value in fields]
    abstract = paper.get("abstract") or ""
    short = cut(abstract, ABSTRACT_CUT)
    lines += ["", "#### Abstract", md_escape(short), ""]
    if short != plain(abstract):  # the whole abstract, folded (Markdown resumes after the blank line)
        lines += ["<details>", "<summary>Full abstract</summary>", "", md_escape(abstract), "", "</details>", ""]
    summary = paper.get("summary")
    if summary:
        model = md_escape(summary.get("model") or ctx.get("model") or "")
        read = _SOURCES.get(summary.get("source") or "")
        if read and summary.get("source") == "abstract" and summary.get("input") == "fulltext":
            read += " (the full text could not be read)"
        read = f" - read from {read}" if read else ""
        lines += ["<details>", f"<summary><strong>🤖 AI Summary (by {model})</strong>{read} - Click to expand</summary>",
                  "", _html_for_markdown(summary_html(summary_markdown(summary))), "", "</details>", ""]
    elif paper_note(paper, ctx.get("summaries_note")):
        lines += [f"*{md_escape(paper_note(paper, ctx.get('summaries_note')))}*", ""]
    lines += ["---", ""]
    return lines


def _utc(value) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def announcement_day(day) -> str:
    """'Thursday, 28 November 2024' for a date or an ISO string; '' when there is no day."""
    if isinstance(day, str):
        try:
            day = dt.date.fromisoformat(day)
        except ValueError:
            return day
    if not isinstance(day, dt.date):
        return ""
    return f"{day:%A}, {day.day} {day:%B %Y}"


def render_readme(ctx: dict) -> str:
    """The README.md digest for the context of docs/ARCHITECTURE.md (deterministic for a ctx)."""
    papers = ctx.get("papers") or []
    day = ctx.get("day")
    day_iso = day.isoformat() if isinstance(day, dt.date) else md_escape(str(day or ""))
    out = [
        "# arXiv Papers Bot 🤖", "",
        "This repository automatically fetches and displays relevant papers from arXiv based on configured criteria.",
        "",
    ]
    if day:
        out += [f"**📅 arXiv announcements of {md_escape(announcement_day(day))}** ({day_iso})", ""]
    out += [
        "## 📊 Statistics", "",
        *([f"- **Announcement Day**: {day_iso}"] if day else []),
        f"- **Last Updated**: {_utc(ctx.get('generated_at'))}",
        f"- **Total Papers Found**: {len(papers)}",
        f"- **Categories Monitored**: {', '.join(md_escape(c) for c in ctx.get('categories') or [])}",
    ]
    if ctx.get("summaries_note"):
        out.append(f"- **AI Summaries**: {md_escape(ctx['summaries_note'])}")
    out += ["", "## 📚 Recent Papers", ""]
    if not papers:
        out += ["*No papers matched the configured criteria for this day.*", "", "---", ""]
    for n, paper in enumerate(papers, 1):
        out += _paper_block(n, paper, ctx)
    keywords = ", ".join(md_escape(k) for k in ctx.get("keywords") or []) or "(none configured)"
    out += [
        "## 🔧 Configuration", "",
        "This bot is configured to look for papers containing the following keywords:",
        f"- {keywords}", "",
        "## 📅 Schedule", "",
        f"The bot runs {md_escape(ctx.get('schedule') or 'on demand')} to fetch the latest papers.", "",
        "## 🚀 How to Use", "",
        "1. **Edit `config.json`**: arXiv categories (e.g. `cs.AI`, `cs.LG`, `cs.CL`), keywords, "
        "`max_papers`, `days_back` and the `ai_summary` settings",
        "2. **Set the LLM key** in the environment variable named by `ai_summary.api_key_env` "
        "(no key: the digest is published without AI summaries)",
        "3. **Run one pass** with `arxiv-bot run`, or start the workers and `arxiv-bot beat` for the daily schedule",
        "4. **Read it** here, in a feed reader (`feed.xml`, `atom.xml`, `feed.json`) or on the web page "
        "(`arxiv-bot serve`)",
        "",
        "---",
        "*Generated automatically by arXiv Bot*",
        "",
    ]
    return "\n".join(out)

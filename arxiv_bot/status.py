"""`arxiv-bot status`: papers per stage for the latest pass and overall, the last passes with
their outcome, failures with reasons, why summaries were skipped, LLM tokens used, and the input
(prompt) tokens planned per paper and per pass with what each paper is read from. `--json` for
scripts.

It only reads: it never creates or migrates a database. A missing SQLite file or a database
without arxiv-bot's tables is a one-line error naming the database it looked for. The exit
status is 1 when the latest pass failed (so a cron job or a health check can act on it).
"""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from shared.db import HEAD_REVISION, check_connection, current_revision, make_engine, safe_url, session_factory
from shared.errors import UserError
from shared.reasons import public_reason
from shared.text import one_line
from shared.models import (PASS_FAILED, SUM_BUDGET, SUM_FAILED, SUM_SKIPPED, SUMMARY_DONE, SUMMARY_FAILED, Paper,
                           PaperText, Pass, PassProfile, ProfileItem, Publication, Summary, SummaryJob)

from . import delivery_status
from .progress import stage_counts


def collect(session, limit: int = 10) -> dict:
    """Everything `status` shows, as plain JSON-able data: `latest_pass` (with per-stage counts,
    or None before the first pass), the last `limit` `passes` newest first (each with its LLM
    tokens and failed summaries), the latest pass's `failures` with reasons, and overall `totals`."""
    recent = list(session.scalars(select(Pass).order_by(Pass.id.desc()).limit(limit)))
    latest = recent[0] if recent else None
    failures = []
    if latest is not None:
        rows = session.execute(select(SummaryJob.paper_id, SummaryJob.language, SummaryJob.state, SummaryJob.note)
                               .where(SummaryJob.pass_id == latest.id,
                                      SummaryJob.state.in_([SUM_FAILED, SUM_BUDGET]))
                               .order_by(SummaryJob.priority)).all()
        # A failure's reason in our own words (a note from before reason codes may hold provider text).
        failures = [{"paper_id": r.paper_id, "language": r.language, "state": r.state,
                     "reason": public_reason(r.note) if r.state == SUM_FAILED else r.note} for r in rows]
        # Skips: the pass made no LLM calls (digest entries), or a replica had no key (jobs).
        skips: dict[str, int] = {}
        for model in (ProfileItem, SummaryJob):
            state = model.summary_state if model is ProfileItem else model.state
            for note, n in session.execute(select(model.note, func.count())
                                           .where(model.pass_id == latest.id, state == SUM_SKIPPED)
                                           .group_by(model.note)).all():
                skips[note] = skips.get(note, 0) + n
        skips = sorted(skips.items(), key=lambda kv: -kv[1])
    tokens = session.execute(select(func.coalesce(func.sum(Summary.prompt_tokens), 0),
                                    func.coalesce(func.sum(Summary.completion_tokens), 0))).one()
    inputs = dict(session.execute(
        select(SummaryJob.pass_id, func.sum(SummaryJob.input_tokens))
        .where(SummaryJob.pass_id.in_([p.id for p in recent])).group_by(SummaryJob.pass_id)).all()) if recent else {}
    failed_per_pass = dict(session.execute(
        select(SummaryJob.pass_id, func.count()).where(SummaryJob.pass_id.in_([p.id for p in recent]),
                                                       SummaryJob.state == SUM_FAILED)
        .group_by(SummaryJob.pass_id)).all()) if recent else {}
    return {
        "latest_pass": {**_pass_dict(latest, stage_counts(session, latest.id)),
                        "input_tokens": int(inputs.get(latest.id) or 0), "papers": _inputs(session, latest.id),
                        "skip_reasons": {note or "no reason recorded": n for note, n in skips}} if latest else None,
        "profiles": profile_rows(session, latest.id) if latest else [],
        "passes": [{**_pass_dict(p), "failed_summaries": failed_per_pass.get(p.id, 0),
                    "input_tokens": int(inputs.get(p.id) or 0)} for p in recent],
        "failures": failures,
        "deliveries": delivery_status.collect(session),
        "totals": {
            "papers": session.scalar(select(func.count()).select_from(Paper)),
            "summaries": session.scalar(select(func.count()).select_from(Summary).where(Summary.status == SUMMARY_DONE)),
            "failed_summaries": session.scalar(select(func.count()).select_from(Summary)
                                               .where(Summary.status == SUMMARY_FAILED)),
            "prompt_tokens": int(tokens[0]), "completion_tokens": int(tokens[1]),
        },
    }


def _inputs(session, pass_id: int) -> list[dict]:
    """What each summary of the pass reads, and its prompt tokens: planned at selection, the real
    prompt's estimate once the text is read (before the call is paid)."""
    rows = session.execute(
        select(SummaryJob.paper_id, SummaryJob.version, SummaryJob.language, SummaryJob.state,
               SummaryJob.input_tokens, Summary.source, PaperText.source.label("text_source"), PaperText.note)
        .outerjoin(Summary, Summary.id == SummaryJob.summary_id)
        .outerjoin(PaperText, (PaperText.paper_id == SummaryJob.paper_id) & (PaperText.version == SummaryJob.version))
        .where(SummaryJob.pass_id == pass_id, SummaryJob.input_tokens.is_not(None))
        .order_by(SummaryJob.priority)).all()
    return [{"paper_id": r.paper_id, "version": r.version, "language": r.language, "state": r.state,
             "source": r.source or r.text_source, "input_tokens": r.input_tokens,
             "note": r.note if (r.source or r.text_source) == r.text_source else None} for r in rows]


def profile_rows(session, pass_id: int) -> list[dict]:
    """Per profile: its last published day, and in the latest pass its candidates, papers,
    summaries by state, whether it is published, and its note (e.g. who the budget starved)."""
    last = dict(session.execute(select(Publication.profile, func.max(Publication.day))
                                .group_by(Publication.profile)).all())
    summaries: dict[str, dict] = {}
    for slug, state, n in session.execute(
            select(ProfileItem.profile, SummaryJob.state, func.count())
            .join(SummaryJob, (SummaryJob.pass_id == ProfileItem.pass_id) & (SummaryJob.paper_id == ProfileItem.paper_id)
                  & (SummaryJob.language == ProfileItem.language))
            .where(ProfileItem.pass_id == pass_id).group_by(ProfileItem.profile, SummaryJob.state)).all():
        summaries.setdefault(slug, {})[state] = n
    rows = []
    for r in session.scalars(select(PassProfile).where(PassProfile.pass_id == pass_id).order_by(PassProfile.profile)):
        day = last.get(r.profile)
        rows.append({"profile": r.profile, "last_digest": day.isoformat() if hasattr(day, "isoformat") else day,
                     "candidates": r.candidates, "papers": r.selected, "published": r.published,
                     "summaries": summaries.get(r.profile, {}), "note": r.note})
    return rows


def _pass_dict(p: Pass, counts: dict | None = None) -> dict:
    out = {"id": p.id, "status": p.status, "trigger": p.trigger, "day": p.day.isoformat() if p.day else None,
           "fetched": p.fetched, "candidates": p.candidates, "selected": p.selected,
           "tokens": p.prompt_tokens + p.completion_tokens, "estimated_tokens": p.estimated_tokens or 0,
           "note": p.note, "error": p.error,
           "started": p.created_at.isoformat(timespec="seconds"),
           "finished": p.finished_at.isoformat(timespec="seconds") if p.finished_at else None}
    if counts is not None:
        out["stages"] = counts
    return out


def _estimated(n: int) -> str:
    return f" (~{n} estimated: calls lost with a stopped worker)" if n else ""


def open_existing(database_url: str):
    """An engine on the database `status` reads, or UserError (one line naming it) when there is
    none: a missing SQLite file is not created, and a database is never migrated here."""
    url = make_url(database_url) if "://" in database_url else None
    if url is not None and url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        if not path.is_file():
            raise UserError(f"no database at {path.resolve()} (DATABASE_URL={safe_url(database_url)}): "
                            "nothing has run with it yet; run `arxiv-bot run` here, or set DATABASE_URL")
    engine = make_engine(database_url)
    check_connection(engine)
    revision = current_revision(engine)
    if revision is None:
        raise UserError(f"database {safe_url(engine)} has no arxiv-bot tables: run `arxiv-bot run` or "
                        "`arxiv-bot db upgrade` first")
    if revision != HEAD_REVISION:
        raise UserError(f"database {safe_url(engine)} is at schema revision {revision}, this arxiv-bot reads "
                        f"{HEAD_REVISION}: run `arxiv-bot db upgrade`")
    return engine


def _day(p: dict) -> str:
    """"day 2024-11-28", or for a pass that failed before the feed named its day, when it ran."""
    if p["day"]:
        return f"day {p['day']}"
    return f"day not known (started {p['started'].replace('T', ' ')[:16]})"


def _sanitised(value):
    """Every string of the status data as one clean line: notes and errors that came from outside
    (arXiv, mail and chat servers) can carry control characters or terminal escape sequences."""
    if isinstance(value, str):
        return one_line(value)
    if isinstance(value, dict):
        return {_sanitised(k): _sanitised(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sanitised(v) for v in value]
    return value


def show_status(config, settings, as_json: bool = False) -> int:
    """Print the status; 1 when the latest pass failed, else 0."""
    engine = open_existing(settings.database_url)
    with session_factory(engine).begin() as s:
        data = _sanitised(collect(s))
    latest = data["latest_pass"]
    code = 1 if latest is not None and latest["status"] == PASS_FAILED else 0
    if as_json:
        print(json.dumps(data, indent=2))
        return code
    if latest is None:
        print(f"no pass yet in {safe_url(engine)}: run `arxiv-bot run` or `arxiv-bot trigger`")
        return 0
    st = latest["stages"]
    print(f"latest pass {latest['id']} ({latest['trigger']}): {latest['status']}, {_day(latest)}")
    print(f"  papers: {st['items']} fetched, {st['scored']} scored, {latest['candidates']} candidates, "
          f"{latest['selected']} in the digest")
    skipped = "; ".join(f"{n} {reason}" if len(latest["skip_reasons"]) > 1 else reason
                        for reason, n in latest["skip_reasons"].items())
    print(f"  summaries: {st['done']} done, {st['pending']} pending, {st['failed']} failed, "
          f"{st['skipped']} skipped{f' ({skipped})' if skipped else ''}, {st['budget']} over budget; "
          f"{latest['tokens']} tokens{_estimated(latest['estimated_tokens'])}")
    if latest["papers"]:
        sources: dict[str, int] = {}
        for p in latest["papers"]:
            sources[p["source"] or "not read yet"] = sources.get(p["source"] or "not read yet", 0) + 1
        print(f"  input: {latest['input_tokens']} prompt tokens for {len(latest['papers'])} summaries "
              f"({', '.join(f'{k} {v}' for k, v in sources.items())}); per paper:")
        for p in latest["papers"]:
            note = f"  ({p['note']})" if p["note"] else ""
            print(f"    {p['paper_id']}v{p['version']} {p['language']:<3} {p['state']:<8} {p['source'] or '-':<8} "
                  f"{p['input_tokens']:>6} tokens{note}")
    for f in data["failures"]:
        print(f"  {f['state']}: {f['paper_id']}: {f['reason']}")
    print("last passes:")
    for p in data["passes"]:
        extra = p["error"] or p["note"] or ""
        failed = f"{p['failed_summaries']} failed summaries  " if p["failed_summaries"] else ""
        inputs = f"input {p['input_tokens']} tokens planned  " if p["input_tokens"] else ""
        print(f"  #{p['id']:<4} {p['started']}  {p['status']:<11} {_day(p)}  {p['selected']} papers  "
              f"{p['tokens']} tokens  {failed}{inputs}{extra}".rstrip())
    if len(data["profiles"]) > 1 or any(p["profile"] != "default" for p in data["profiles"]):
        print("profiles (latest pass):")
        for p in data["profiles"]:
            sums = ", ".join(f"{n} {state}" for state, n in sorted(p["summaries"].items())) or "no summaries"
            print(f"  {p['profile']:<20} last digest {p['last_digest'] or 'none'}  {p['papers']} papers  "
                  f"{sums}{'  ' + p['note'] if p['note'] else ''}")
    for line in delivery_status.lines(data["deliveries"]):
        print(line)
    t = data["totals"]
    print(f"overall: {t['papers']} papers, {t['summaries']} summaries ({t['failed_summaries']} failed), "
          f"{t['prompt_tokens'] + t['completion_tokens']} LLM tokens "
          f"({t['prompt_tokens']} prompt + {t['completion_tokens']} completion)")
    if code:
        print(f"the latest pass failed: {latest['error'] or 'no reason recorded'}")
    return code

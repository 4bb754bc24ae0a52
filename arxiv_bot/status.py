"""`arxiv-bot status`: papers per stage for the latest pass and overall, the last passes with
their outcome, failures with reasons, LLM tokens used. `--json` for scripts."""
from __future__ import annotations

import json

from sqlalchemy import func, select

from shared.db import check_connection, ensure_schema, make_engine, session_factory
from shared.models import SUM_BUDGET, SUM_FAILED, SUMMARY_DONE, SUMMARY_FAILED, Paper, Pass, PassItem, Summary

from .progress import stage_counts


def collect(session, limit: int = 10) -> dict:
    """Everything `status` shows, as plain JSON-able data: `latest_pass` (with per-stage counts,
    or None before the first pass), the last `limit` `passes` newest first (each with its LLM
    tokens and failed summaries), the latest pass's `failures` with reasons, and overall `totals`."""
    recent = list(session.scalars(select(Pass).order_by(Pass.id.desc()).limit(limit)))
    latest = recent[0] if recent else None
    failures = []
    if latest is not None:
        rows = session.execute(select(PassItem.paper_id, PassItem.summary_state, PassItem.note)
                               .where(PassItem.pass_id == latest.id,
                                      PassItem.summary_state.in_([SUM_FAILED, SUM_BUDGET]))).all()
        failures = [{"paper_id": r.paper_id, "state": r.summary_state, "reason": r.note} for r in rows]
    tokens = session.execute(select(func.coalesce(func.sum(Summary.prompt_tokens), 0),
                                    func.coalesce(func.sum(Summary.completion_tokens), 0))).one()
    failed_per_pass = dict(session.execute(
        select(PassItem.pass_id, func.count()).where(PassItem.pass_id.in_([p.id for p in recent]),
                                                     PassItem.summary_state == SUM_FAILED)
        .group_by(PassItem.pass_id)).all()) if recent else {}
    return {
        "latest_pass": _pass_dict(latest, stage_counts(session, latest.id)) if latest else None,
        "passes": [{**_pass_dict(p), "failed_summaries": failed_per_pass.get(p.id, 0)} for p in recent],
        "failures": failures,
        "totals": {
            "papers": session.scalar(select(func.count()).select_from(Paper)),
            "summaries": session.scalar(select(func.count()).select_from(Summary).where(Summary.status == SUMMARY_DONE)),
            "failed_summaries": session.scalar(select(func.count()).select_from(Summary)
                                               .where(Summary.status == SUMMARY_FAILED)),
            "prompt_tokens": int(tokens[0]), "completion_tokens": int(tokens[1]),
        },
    }


def _pass_dict(p: Pass, counts: dict | None = None) -> dict:
    out = {"id": p.id, "status": p.status, "trigger": p.trigger, "day": p.day.isoformat() if p.day else None,
           "fetched": p.fetched, "candidates": p.candidates, "selected": p.selected,
           "tokens": p.prompt_tokens + p.completion_tokens, "note": p.note, "error": p.error,
           "started": p.created_at.isoformat(timespec="seconds"),
           "finished": p.finished_at.isoformat(timespec="seconds") if p.finished_at else None}
    if counts is not None:
        out["stages"] = counts
    return out


def show_status(config, settings, as_json: bool = False) -> int:
    engine = make_engine(settings.database_url)
    check_connection(engine)
    ensure_schema(engine)
    with session_factory(engine).begin() as s:
        data = collect(s)
    if as_json:
        print(json.dumps(data, indent=2))
        return 0
    latest = data["latest_pass"]
    if latest is None:
        print("no pass yet: run `arxiv-bot run` or `arxiv-bot trigger`")
        return 0
    st = latest["stages"]
    print(f"latest pass {latest['id']} ({latest['trigger']}): {latest['status']}, day {latest['day']}")
    print(f"  papers: {st['items']} fetched, {st['scored']} scored, {latest['candidates']} candidates, "
          f"{latest['selected']} in the digest")
    print(f"  summaries: {st['done']} done, {st['pending']} pending, {st['failed']} failed, "
          f"{st['skipped']} skipped, {st['budget']} over budget; {latest['tokens']} tokens")
    for f in data["failures"]:
        print(f"  {f['state']}: {f['paper_id']}: {f['reason']}")
    print("last passes:")
    for p in data["passes"]:
        extra = p["error"] or p["note"] or ""
        failed = f"{p['failed_summaries']} failed summaries  " if p["failed_summaries"] else ""
        print(f"  #{p['id']:<4} {p['started']}  {p['status']:<11} day {p['day']}  {p['selected']} papers  "
              f"{p['tokens']} tokens  {failed}{extra}".rstrip())
    t = data["totals"]
    print(f"overall: {t['papers']} papers, {t['summaries']} summaries ({t['failed_summaries']} failed), "
          f"{t['prompt_tokens'] + t['completion_tokens']} LLM tokens "
          f"({t['prompt_tokens']} prompt + {t['completion_tokens']} completion)")
    return 0

"""A published pass with a digest, written the way the pipeline writes it, for delivery tests and
the delivery benchmark: the real deliver handler then runs in this process through the
embedded dispatcher (shared.dispatch.LocalDispatcher), against real servers on sockets."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from shared import passes
from shared.config import parse_config
from shared.db import ensure_schema
from shared.dispatch import LocalDispatcher
from shared.models import PASS_PUBLISHED, Paper, Pass, PassProfile, Publication, Summary
from shared.render import markdown
from shared import digest
from shared.runtime import Runtime
from shared.settings import Settings
from tests.seed import digest_item

DAY = dt.date(2024, 11, 28)
HOSTILE = ('<script>alert("x")</script> & <b>bold</b> *star* _under_ <!channel> @everyone '
           '[click](javascript:alert(1)) </details> `code` | pipe')


def make_runtime(tmp: Path, db_url: str, deliver=None, profiles=None, env=None, threads: int = 2, **cfg) -> Runtime:
    """A runtime on `db_url` whose dispatcher runs every handler in this process."""
    from arxiv_bot.services import handler_table

    data = {"categories": ["cs.LG"], "feeds": {"public_url": "https://digest.example.org"},
            "delivery": {"timeout_seconds": 5, "lease_seconds": 30, "max_retries": 3}, **cfg}
    if deliver is not None:
        data["deliver"] = deliver
    if profiles is not None:
        data["profiles"] = profiles
    config = parse_config(data)
    full_env = {"DATABASE_URL": db_url, "OUTPUT_DIR": str(tmp / "output"), "SMTP_FROM": "arxiv-bot <bot@example.org>",
                **(env or {})}
    settings = Settings.from_env(config, tmp / "config.json", full_env)
    from shared import names

    rt = Runtime(config, settings, dispatcher=LocalDispatcher(handler_table(), threads={names.DELIVER_QUEUE: threads}))
    ensure_schema(rt.engine)
    return rt


def paper_rows(n: int, hostile_first: bool = True) -> list[dict]:
    out = []
    for i in range(n):
        title = HOSTILE if (i == 0 and hostile_first) else f"Paper number {i + 1} on scalable inference"
        out.append({"id": f"2411.{17700 + i:05d}", "title": title,
                    "abstract": f"Abstract {i + 1}: we study <inference> & serving of LLMs. " * 3,
                    "authors": (["<img src=x onerror=alert(1)>"] if i == 0 else []) + [f"Author {i}-{k}" for k in range(8)],
                    "summary": i < 3})
    return out


def seed_pass(rt: Runtime, papers: list[dict], profile: str = "default", day: dt.date = DAY,
              pass_id: int | None = None) -> int:
    """A published pass (or one more profile of `pass_id`) with `papers` in `profile`'s digest and
    its README published, as the publisher leaves them (the outbox is not planned here)."""
    with rt.session() as s:
        if pass_id is None:
            p = Pass(status=PASS_PUBLISHED, trigger="cli", day=day)
            s.add(p)
            s.flush()
            p.active = None  # finished (the column's default is the active slot)
            s.flush()
            pass_id = p.id
        for rank, item in enumerate(papers, 1):
            if s.get(Paper, item["id"]) is None:
                s.add(Paper(id=item["id"], version=1, title=item["title"], abstract=item["abstract"],
                            authors=item["authors"], primary_category="cs.LG", categories=["cs.LG"], announced=day,
                            version_announced=day))
                s.flush()
            summary_id = None
            if item.get("summary"):
                sm = s.query(Summary).filter_by(paper_id=item["id"]).first()
                if sm is None:
                    sm = Summary(paper_id=item["id"], version=1, model="m", prompt_hash="h", language="en",
                                 input_mode="abstract", status="done", raw_text="x",
                                 tldr=f"TL;DR of {item['title']}",
                                 sections={"contributions": f"**Contribution** of {item['title']}", "method": None,
                                           "results": "Results <b>bold</b>", "conclusions": None})
                    s.add(sm)
                    s.flush()
                summary_id = sm.id
            digest_item(s, pass_id, item["id"], rank=rank, score=10.0 - rank / 10, day=day, profile=profile,
                        matched=["LLM"], summary_state="done" if summary_id else None, summary_id=summary_id)
        row = s.get(PassProfile, (pass_id, profile))
        if row is None:
            row = PassProfile(pass_id=pass_id, profile=profile, scored=True, candidates=0)
            s.add(row)
        row.selected, row.published = len(papers), True
        s.flush()
        ctx = digest.build_context(digest.load_pass_papers(s, pass_id, profile), day=day,
                                   generated_at=dt.datetime(2024, 11, 28, 6, tzinfo=dt.timezone.utc),
                                   categories=["cs.LG"], keywords=["LLM"], schedule="weekdays", model="m")
        s.merge(Publication(profile=profile, day=day, pass_id=pass_id, paper_count=len(papers),
                            readme_md=markdown.render_readme(ctx)))
    return pass_id


def plan(rt: Runtime, pass_id: int, profiles=None) -> list:
    """What the publisher does for each profile in its transaction: the outbox rows; returns the
    deliver messages (sent after commit by the caller)."""
    work = []
    readers = rt.readers()
    with rt.session() as s:
        p = s.get(Pass, pass_id)
        for prof in readers.profiles:
            if profiles is None or prof.slug in profiles:
                work += passes.deliver(s, p, prof)
    return work


def deliver_now(rt: Runtime, work) -> None:
    rt.send_all(work)
    rt.dispatcher.run_until_idle(rt)


def statuses(rt: Runtime) -> list[tuple]:
    from sqlalchemy import select

    from shared.models import Delivery

    with rt.session() as s:
        return [tuple(r) for r in s.execute(select(Delivery.recipient, Delivery.status, Delivery.error, Delivery.attempts)
                                            .order_by(Delivery.id))]


def dump(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)

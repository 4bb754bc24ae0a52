"""Progress of a pass as a person sees it: one line per stage reached (plain text), and on a
terminal a live bar for the stage in progress (rich). Read from the database, so it shows the
same truth in embedded mode (`run`) and distributed mode (`trigger --wait`)."""
from __future__ import annotations

import time

from sqlalchemy import func, select

from shared.models import (PASS_EMPTY, PASS_FAILED, PASS_PUBLISHED, PASS_SCORING, PASS_SUMMARIZING, SUM_BUDGET,
                           SUM_DONE, SUM_FAILED, SUM_PENDING, SUM_SKIPPED, Pass, PassItem)
from shared.passes import summaries_off_reason


def stage_counts(s, pass_id: int) -> dict:
    rows = s.execute(select(PassItem.scored, PassItem.summary_state, func.count())
                     .where(PassItem.pass_id == pass_id)
                     .group_by(PassItem.scored, PassItem.summary_state)).all()
    out = {"items": 0, "scored": 0, SUM_PENDING: 0, SUM_DONE: 0, SUM_FAILED: 0, SUM_SKIPPED: 0, SUM_BUDGET: 0}
    for scored, state, n in rows:
        out["items"] += n
        out["scored"] += n if scored else 0
        if state:
            out[state] = out.get(state, 0) + n
    return out


class Progress:
    def __init__(self, rt, stream, min_interval: float = 0.5):
        self.rt, self.stream = rt, stream
        self.last_status: str | None = None
        self.last_check = 0.0
        self.min_interval = min_interval
        self.reason_said = False

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def begin(self, no_summaries: bool = False) -> None:
        cats = ", ".join(self.rt.config.categories)
        reason = summaries_off_reason(self.rt.config, self.rt.settings, Pass(no_summaries=no_summaries))
        if reason:
            self.say(reason)
            self.reason_said = True
        self.say(f"fetching announcements for {cats} from {self.rt.settings.arxiv_rss_url}")

    def step(self, _task: str | None = None, force: bool = False) -> str | None:
        now = time.monotonic()
        if not force and now - self.last_check < self.min_interval:
            return self.last_status
        self.last_check = now
        with self.rt.session() as s:
            p = s.scalars(select(Pass).order_by(Pass.id.desc()).limit(1)).first()
            if p is None:
                return None
            if p.status != self.last_status:
                self._announce(s, p)
                self.last_status = p.status
            return p.status

    def _announce(self, s, p: Pass) -> None:
        c = stage_counts(s, p.id)
        if p.status == PASS_SCORING:
            self.say(f"fetched {p.fetched} papers announced {p.day}; scoring")
        elif p.status == PASS_SUMMARIZING:
            self.say(f"scored {c['scored']} papers: {p.candidates} candidates, {p.selected} in the digest")
            reason = summaries_off_reason(self.rt.config, self.rt.settings, p)
            if reason and not self.reason_said:
                self.say(reason)
            elif not reason:
                self.say(f"summarizing {c[SUM_PENDING] + c[SUM_DONE]} papers with {self.rt.settings.llm_model}")
        elif p.status == "publishing":
            self.say("publishing")

    def end(self) -> None:
        self.step(force=True)


def outcome_line(s, p: Pass, settings) -> str:
    if p.status == PASS_EMPTY:
        return f"{p.note or 'no announcement'}: nothing new to publish; the previous digest is left in place"
    if p.status == PASS_FAILED:
        return f"pass {p.id} failed: {p.error}"
    c = stage_counts(s, p.id)
    without = c[SUM_SKIPPED] + c[SUM_FAILED] + c[SUM_BUDGET]
    tokens = p.prompt_tokens + p.completion_tokens
    state = "published" if p.status == PASS_PUBLISHED else p.status
    return (f"{state} {p.day}: {p.fetched} papers fetched, {p.candidates} candidates, {p.selected} in the digest, "
            f"{c[SUM_DONE]} summarized, {without} without summary, {tokens} LLM tokens -> {settings.output_dir}/")

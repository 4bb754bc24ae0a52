"""Progress of a pass as a person sees it: one line per stage reached (plain text), and on a
terminal also live bars per stage (fetch, score, summarize, publish; rich). Read from the
database, so it shows the same truth in embedded mode (`run`) and distributed mode
(`trigger --wait`). When the stream is not a terminal (pipes, CI, tests) only the plain lines are
written, unchanged."""
from __future__ import annotations

import time

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from shared.models import (PASS_EMPTY, PASS_FAILED, PASS_FETCHING, PASS_PUBLISHED, PASS_SCORING, PASS_SUMMARIZING,
                           PASS_TERMINAL, SUM_BUDGET, SUM_DONE, SUM_FAILED, SUM_PENDING, SUM_SKIPPED, Pass, PassItem,
                           PassProfile, ProfileItem, SummaryJob)
from shared.passes import summaries_off_reason
from shared.redact import mask_url


def stage_counts(s, pass_id: int) -> dict:
    """Papers, profiles and summaries of a pass per stage. "scored" counts papers: all of them once
    every profile is scored, else in proportion (the progress bar); summaries count jobs (a paper
    in one language), "skipped" counts digest entries whose pass makes no LLM calls."""
    out = {"items": 0, "scored": 0, "profiles": 0, "profiles_scored": 0, "profiles_published": 0,
           SUM_PENDING: 0, SUM_DONE: 0, SUM_FAILED: 0, SUM_SKIPPED: 0, SUM_BUDGET: 0}
    out["items"] = s.scalar(select(func.count()).select_from(PassItem).where(PassItem.pass_id == pass_id)) or 0
    for scored, published, n in s.execute(select(PassProfile.scored, PassProfile.published, func.count())
                                          .where(PassProfile.pass_id == pass_id)
                                          .group_by(PassProfile.scored, PassProfile.published)).all():
        out["profiles"] += n
        out["profiles_scored"] += n if scored else 0
        out["profiles_published"] += n if published else 0
    if out["profiles"]:
        out["scored"] = out["items"] * out["profiles_scored"] // out["profiles"]
    for state, n in s.execute(select(SummaryJob.state, func.count()).where(SummaryJob.pass_id == pass_id)
                              .group_by(SummaryJob.state)).all():
        out[state] = out.get(state, 0) + n
    out[SUM_SKIPPED] += s.scalar(select(func.count()).select_from(ProfileItem).where(
        ProfileItem.pass_id == pass_id, ProfileItem.summary_state == SUM_SKIPPED)) or 0
    return out


STAGES = ("fetch", "score", "summarize", "publish")
_ORDER = {PASS_FETCHING: 0, PASS_SCORING: 1, PASS_SUMMARIZING: 2, "publishing": 3, PASS_PUBLISHED: 4, PASS_EMPTY: 4}


def stage_bars(p: Pass, c: dict) -> dict[str, tuple[str, float | None, float]]:
    """stage -> (label, total, completed) for pass `p` with stage counts `c`. A total of None
    means "not known yet" (an indeterminate bar); a stage the pass is past is always complete."""
    at = _ORDER.get(p.status, 0)
    todo = c[SUM_PENDING] + c[SUM_DONE] + c[SUM_FAILED] + c[SUM_BUDGET]
    settled = c[SUM_DONE] + c[SUM_FAILED] + c[SUM_BUDGET]
    bars = {
        "fetch": (f"fetch ({p.fetched} papers)" if at > 0 else "fetch", 1, 1 if at > 0 else 0),
        "score": ("score", c["items"] or None, c["scored"]),
        "summarize": ("summarize" + (f" ({c[SUM_FAILED]} failed)" if c[SUM_FAILED] else ""), todo or None, settled),
        "publish": ("publish", 1, 1 if at > 3 else 0),
    }
    for i, stage in enumerate(STAGES):
        label, total, done = bars[stage]
        if at > i and stage != "fetch":
            bars[stage] = (label, total or 1, total or 1)  # e.g. an empty pass or summaries off
    return bars


class _Bars:
    """Live rich bars on a terminal; stopped (final state left on screen) when the pass ends."""

    def __init__(self, stream):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn

        self.console = Console(file=stream)
        self.progress = Progress(TextColumn("{task.description:<24}"), BarColumn(), TaskProgressColumn(),
                                 MofNCompleteColumn(), console=self.console, auto_refresh=False, transient=False)
        self.tasks = {stage: self.progress.add_task(stage, total=None, start=True) for stage in STAGES}
        self.live = False

    def update(self, p: Pass, c: dict) -> None:
        if not self.live:
            import atexit

            self.progress.start()
            self.live = True
            atexit.register(self.stop)  # an error mid-pass must not leave the cursor hidden
        for stage, (label, total, done) in stage_bars(p, c).items():
            self.progress.update(self.tasks[stage], description=label, total=total, completed=done)
        self.progress.refresh()

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if self.live:
            self.progress.stop()
            self.live = False


class Progress:
    def __init__(self, rt, stream, min_interval: float = 0.5):
        self.rt, self.stream = rt, stream
        self.last_status: str | None = None
        self.last_check = 0.0
        self.min_interval = min_interval
        self.reason_said = False
        is_tty = getattr(stream, "isatty", None)
        self.bars = _Bars(stream) if is_tty and is_tty() else None

    def say(self, text: str) -> None:
        if self.bars is not None:
            self.bars.say(text)  # above the live bars, not through them
        else:
            print(text, file=self.stream, flush=True)

    def begin(self, no_summaries: bool = False) -> None:
        cats = ", ".join(self.rt.config.categories)
        reason = summaries_off_reason(self.rt.config, self.rt.settings, Pass(no_summaries=no_summaries))
        if reason:
            self.say(reason)
            self.reason_said = True
        self.say(f"fetching announcements for {cats} from {mask_url(self.rt.settings.arxiv_rss_url)}")

    def step(self, _task: str | None = None, force: bool = False) -> str | None:
        now = time.monotonic()
        if not force and now - self.last_check < self.min_interval:
            return self.last_status
        self.last_check = now
        try:
            return self._refresh()
        except SQLAlchemyError:
            # The database is briefly away: the stages retry on their own; progress just
            # skips this refresh instead of ending the run.
            return self.last_status

    def _refresh(self) -> str | None:
        with self.rt.session() as s:
            p = s.scalars(select(Pass).order_by(Pass.id.desc()).limit(1)).first()
            if p is None:
                return None
            if p.status != self.last_status:
                self._announce(s, p)
                self.last_status = p.status
            if self.bars is not None:
                self.bars.update(p, stage_counts(s, p.id))
                if p.status in PASS_TERMINAL:
                    self.bars.stop()  # the caller's outcome line follows the final bars
            return p.status

    def _announce(self, s, p: Pass) -> None:
        c = stage_counts(s, p.id)
        if p.status == PASS_SCORING:
            self.say(f"fetched {p.fetched} papers announced {p.day}; scoring")
        elif p.status == PASS_SUMMARIZING:
            readers = f" for {c['profiles']} profiles" if c["profiles"] > 1 else ""
            self.say(f"scored {c['scored']} papers{readers}: {p.candidates} candidates, {p.selected} in the digest"
                     + ("s" if readers else ""))
            reason = summaries_off_reason(self.rt.config, self.rt.settings, p)
            if reason and not self.reason_said:
                self.say(reason)
            elif not reason:
                self.say(f"summarizing {c[SUM_PENDING] + c[SUM_DONE]} papers with {self.rt.settings.llm_model}")
        elif p.status == "publishing":
            self.say("publishing")

    def end(self) -> None:
        """Show the final state; on a terminal the bars stop and stay on screen."""
        self.step(force=True)
        if self.bars is not None:
            self.bars.stop()


def estimated_note(estimated: int | None) -> str:
    """Marks the part of a token total that is an estimate (calls lost with a killed worker)."""
    return f" (~{estimated} estimated: calls lost with a stopped worker)" if estimated else ""


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
            f"{c[SUM_DONE]} summarized, {without} without summary, {tokens} LLM tokens{estimated_note(p.estimated_tokens)}"
            f" -> {settings.output_dir}/")

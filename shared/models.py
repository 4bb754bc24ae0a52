"""SQLAlchemy 2.0 models: the database is the source of truth for every stage.

Papers are keyed by arXiv id without version; the version is a column and every version seen is
kept in paper_versions. A pass is one run of the pipeline; pass_items holds each paper's progress
through that pass (scored, selected, summary state), so any stage can tell from the database
alone what is done. Summaries are keyed by what determines their text, so one is never paid
for twice. Schema changes go through Alembic (shared/migrations).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (JSON, Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC (SQLite has no time zones), always returns aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value


class Base(DeclarativeBase):
    pass


# Pass states, in order. Terminal: published, empty (no announcement), failed.
PASS_FETCHING = "fetching"
PASS_SCORING = "scoring"
PASS_SUMMARIZING = "summarizing"
PASS_PUBLISHING = "publishing"
PASS_PUBLISHED = "published"
PASS_EMPTY = "empty"
PASS_FAILED = "failed"
PASS_TERMINAL = (PASS_PUBLISHED, PASS_EMPTY, PASS_FAILED)

# summary_jobs.state (and what a profile shows for a paper it wanted summarized).
SUM_PENDING = "pending"      # waiting for the summarizer
SUM_DONE = "done"            # a summary is attached (fresh or reused)
SUM_FAILED = "failed"        # gave up after retries; reason in the note; retried next pass
SUM_SKIPPED = "skipped"      # no LLM key / disabled / --no-summaries; reason in note
SUM_BUDGET = "budget"        # daily_token_budget reached; reason in note
SUM_TERMINAL = (SUM_DONE, SUM_FAILED, SUM_SKIPPED, SUM_BUDGET)

# summaries.status: a provider call is in flight under a lease, the text is stored, or the last
# attempt gave up (the next pass takes it over).
SUMMARY_LEASED = "leased"
SUMMARY_DONE = "done"
SUMMARY_FAILED = "failed"


class Paper(Base):
    __tablename__ = "papers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # '2411.17700', 'hep-th/9901001'
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text)
    authors: Mapped[list] = mapped_column(JSON)
    primary_category: Mapped[str] = mapped_column(String(64))
    categories: Mapped[list] = mapped_column(JSON)
    doi: Mapped[str | None] = mapped_column(Text)
    journal_ref: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    license: Mapped[str | None] = mapped_column(Text)
    announced: Mapped[dt.date | None] = mapped_column(Date)  # first announcement seen
    version_announced: Mapped[dt.date | None] = mapped_column(Date)  # announcement of `version`
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PaperVersion(Base):
    __tablename__ = "paper_versions"

    paper_id: Mapped[str] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text)
    announced: Mapped[dt.date | None] = mapped_column(Date)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Pass(Base):
    """One run of the pipeline. `active` is 1 while the pass is not terminal and NULL after:
    its unique index lets only one pass be active at a time (two triggers make one pass)."""

    __tablename__ = "passes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16), default=PASS_FETCHING)
    active: Mapped[int | None] = mapped_column(Integer, unique=True, default=1)
    trigger: Mapped[str] = mapped_column(String(32), default="cli")
    no_summaries: Mapped[bool] = mapped_column(Boolean, default=False)
    day: Mapped[dt.date | None] = mapped_column(Date)  # announcement day the feed carried
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    candidates: Mapped[int] = mapped_column(Integer, default=0)
    selected: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # Of the tokens above, those estimated: calls paid by a worker that died before storing the
    # answer (shown as estimates by `arxiv-bot status` and the run's last line).
    estimated_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The fetch claim: the process downloading the day (renewed by its heartbeat, shared.liveness).
    fetch_owner: Mapped[str | None] = mapped_column(String(128))
    fetch_lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PassItem(Base):
    """A paper of a pass: fetched once for every profile. `announce_type` is relative to the union
    of the profiles' categories (each profile re-derives its own, services/fetcher/rss.py)."""

    __tablename__ = "pass_items"

    pass_id: Mapped[int] = mapped_column(ForeignKey("passes.id", ondelete="CASCADE"), primary_key=True)
    paper_id: Mapped[str] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    announce_type: Mapped[str] = mapped_column(String(16))
    announced: Mapped[dt.date | None] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PassProfile(Base):
    """A profile's progress through one pass: scored (and selected) once, published once."""

    __tablename__ = "pass_profiles"

    pass_id: Mapped[int] = mapped_column(ForeignKey("passes.id", ondelete="CASCADE"), primary_key=True)
    profile: Mapped[str] = mapped_column(String(40), primary_key=True)
    scored: Mapped[bool] = mapped_column(Boolean, default=False)
    candidates: Mapped[int] = mapped_column(Integer, default=0)
    selected: Mapped[int] = mapped_column(Integer, default=0)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_pass_profiles_scored", "pass_id", "scored"),
        Index("ix_pass_profiles_published", "pass_id", "published"),
    )


# profile_items.summary_state: the profile asked for a summary (its state is the job's), or
# summaries are off for the pass (reason in note). NULL: ranked beyond max_papers_to_summarize.
ITEM_WANTS_SUMMARY = "requested"


class ProfileItem(Base):
    """A paper in a profile's digest of a pass (ranked papers only: at most max_papers per
    profile, however many papers the day has)."""

    __tablename__ = "profile_items"

    pass_id: Mapped[int] = mapped_column(ForeignKey("passes.id", ondelete="CASCADE"), primary_key=True)
    profile: Mapped[str] = mapped_column(String(40), primary_key=True)
    paper_id: Mapped[str] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    announce_type: Mapped[str] = mapped_column(String(16))  # relative to the profile's categories
    matched: Mapped[list | None] = mapped_column(JSON)
    match_details: Mapped[list | None] = mapped_column(JSON)
    updated: Mapped[bool] = mapped_column(Boolean, default=False)  # a replacement of a paper shown before
    summary_state: Mapped[str | None] = mapped_column(String(16))  # ITEM_WANTS_SUMMARY | SUM_SKIPPED | NULL
    language: Mapped[str | None] = mapped_column(String(16))  # of the summary it wants (its job's key)
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_profile_items_profile_paper", "profile", "paper_id"),
    )


class SummaryJob(Base):
    """One summary a pass needs: per (paper, language), however many profiles selected the
    paper. Its state drives the summarizing stage; profiles read their papers' summaries here."""

    __tablename__ = "summary_jobs"

    pass_id: Mapped[int] = mapped_column(ForeignKey("passes.id", ondelete="CASCADE"), primary_key=True)
    paper_id: Mapped[str] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=0)  # round-robin order over profiles by rank
    state: Mapped[str] = mapped_column(String(16), default=SUM_PENDING)  # SUM_*
    summary_id: Mapped[int | None] = mapped_column(ForeignKey("summaries.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    # Estimated prompt tokens of this paper's summary call: planned at selection (max_input_tokens,
    # or the cached text's size), then the real prompt's estimate once the text is read.
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_summary_jobs_pass_state", "pass_id", "state"),
    )


class Summary(Base):
    """An LLM summary, keyed by everything that determines its text (never pay twice)."""

    __tablename__ = "summaries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    paper_id: Mapped[str] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(128))
    prompt_hash: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    input_mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=SUMMARY_LEASED)  # SUMMARY_*
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    raw_text: Mapped[str | None] = mapped_column(Text)
    tldr: Mapped[str | None] = mapped_column(Text)
    sections: Mapped[dict | None] = mapped_column(JSON)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    provider_calls: Mapped[int] = mapped_column(Integer, default=0)
    # Estimated prompt tokens of the provider call in flight (set before it, cleared when its
    # answer or error is recorded): a worker killed meanwhile leaves it for the take-over to count.
    inflight_tokens: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)  # a newer paper version exists
    # What the model read: "html" or "pdf" (the full text), "abstract" (input "abstract", or the
    # full text could not be had); NULL for summaries made before this was recorded.
    source: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("paper_id", "version", "model", "prompt_hash", "language", "input_mode",
                         name="uq_summary_key"),
    )


# paper_texts.source
SOURCE_HTML = "html"
SOURCE_PDF = "pdf"
SOURCE_ABSTRACT = "abstract"


class PaperText(Base):
    """A paper version's full text, as sections, read once from arXiv (HTML rendering, else PDF)
    and kept for every later summary of that version: a retry, a re-run, another language or
    model. source "abstract" records that neither could be read (and `note` says why), so the
    next summary does not download again either. Independent of language, model and prompt."""

    __tablename__ = "paper_texts"

    paper_id: Mapped[str] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))        # SOURCE_*
    sections: Mapped[list] = mapped_column(JSON)            # [sections.Section.to_json()]
    tokens: Mapped[int] = mapped_column(Integer, default=0)  # everything selectable (no references)
    note: Mapped[str | None] = mapped_column(Text)           # why not the HTML / not the full text
    extractor: Mapped[str] = mapped_column(String(32))       # which code read it (re-read on change)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class FetchWatermark(Base):
    """The last announcement day fully ingested for a category (backfill starts after it)."""

    __tablename__ = "fetch_watermarks"

    category: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_day: Mapped[dt.date] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Publication(Base):
    """A profile's published digest day (its archive). The latest pass for a day wins."""

    __tablename__ = "publications"

    profile: Mapped[str] = mapped_column(String(40), primary_key=True, default="default")
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    pass_id: Mapped[int] = mapped_column(ForeignKey("passes.id"))
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    paper_count: Mapped[int] = mapped_column(Integer, default=0)
    readme_md: Mapped[str] = mapped_column(Text, default="")


class ProfileKey(Base):
    """A private profile's key generation: `arxiv-bot profile rotate` bumps it, which changes
    the key derived from SECRET_KEY (the old links stop working)."""

    __tablename__ = "profile_keys"

    profile: Mapped[str] = mapped_column(String(40), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    rotated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppSecret(Base):
    """Secrets the deployment generates for itself when the environment gives none (SECRET_KEY):
    made once, kept here, the same for every process."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# deliveries.status: waiting (or waiting for a retry), claimed by a worker that is sending it
# now (under a lease), accepted by the server, or given up with the reason in `error`.
DELIVERY_PENDING = "pending"
DELIVERY_SENDING = "sending"
DELIVERY_SENT = "sent"
DELIVERY_FAILED = "failed"


class Delivery(Base):
    """The outbox: one digest for one recipient of one channel of a profile, written in the
    transaction that publishes the profile (shared/outbox.py). Keyed by (profile, day, channel,
    recipient): a second pass of the same announcement day delivers nothing again. No secret is
    stored: the channel is named by a hash of its config (the webhook URL is not in it)."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pass_id: Mapped[int] = mapped_column(ForeignKey("passes.id", ondelete="CASCADE"))
    profile: Mapped[str] = mapped_column(String(40))
    day: Mapped[dt.date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16))      # email | webhook | git
    channel_key: Mapped[str] = mapped_column(String(32))  # stable hash of the channel's config
    label: Mapped[str] = mapped_column(String(200))       # what status shows (no secret)
    recipient: Mapped[str] = mapped_column(String(320))   # address; webhook: its url_env; git: the path
    status: Mapped[str] = mapped_column(String(16), default=DELIVERY_PENDING)  # DELIVERY_*
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)  # chat posts already accepted
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    not_before: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # the server's Retry-After
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("profile", "day", "channel_key", "recipient", name="uq_delivery_key"),
        Index("ix_deliveries_status", "status", "updated_at"),
        Index("ix_deliveries_pass", "pass_id"),
    )
# ratings.rating and ratings.source
RATING_UP = "up"
RATING_DOWN = "down"
RATINGS = (RATING_UP, RATING_DOWN)
RATING_SOURCES = ("web", "link", "cli", "import")


class Rating(Base):
    """A reader's rating of a paper for one profile: "up" (more like this) or "down" (less like
    this). One row per (profile, paper): the last rating wins. `source` says where it came from:
    the page's buttons (web), a feedback link's confirmation (link), `feedback add` (cli) or
    `feedback import` (import)."""

    __tablename__ = "ratings"

    profile: Mapped[str] = mapped_column(String(40), primary_key=True)
    paper_id: Mapped[str] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True)
    rating: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

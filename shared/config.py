"""The one config model: config.json validated with pydantic, defaults and start-up checks.

`load_config(path)` reads and validates config.json and returns a `Config`; every problem
becomes a `ConfigError` with one line naming the key (and a suggestion for a misspelling).
The original bot's config.json loads unchanged: keys it had that do nothing here are accepted
and reported, with other settings worth a warning, by `Config.startup_warnings()`.
Environment overrides live in shared/settings.py. docs/DEPLOY.md is the reference for every key.
"""
from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .arxiv import ANNOUNCE_TYPES, is_category
from .errors import ConfigError



def http_url_problem(value: str) -> str | None:
    """Why `value` is not a usable http(s) URL with a host, or None when it is one. Every URL
    arxiv-bot is configured with (config.json and the environment) passes this: no other scheme
    (javascript:, file:, data:), no whitespace, control characters, double quotes, backslashes,
    backticks or angle brackets. The apostrophe is allowed: RFC 3986 admits it (a password may
    hold one), and every output escapes it where it lands in markup."""
    from urllib.parse import urlsplit

    if not isinstance(value, str) or not value:
        return "is empty"
    if re.search(r"[\s\x00-\x1f\x7f-\x9f<>\"`\\]", value):
        return "contains spaces, double quotes, backslashes, backticks, angle brackets or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host name"
    return None


def masked_url(url: str, cap: int = 120) -> str:
    """`url` for a one-line message: masked by the one rule (shared/redact.py: passwords and
    secret-named parameters), printable, at most `cap` characters."""
    from .redact import mask_url

    shown = mask_url(str(url))
    shown = "".join(c if c.isprintable() else "?" for c in shown)
    return shown if len(shown) <= cap else shown[:cap - 1] + "…"


class _Strict(BaseModel):
    # Finite numbers only: NaN or Infinity (which json.loads accepts) is refused at load time,
    # never discovered in a score or a timedelta after the fetch.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Every number has a range it can work in. A weight's bound keeps any sum of scores finite
# (papers.json must stay valid JSON); durations stay within what datetime/timers can hold.
WEIGHT = 1000.0
DAY = 86400.0
Weight = Annotated[float, Field(ge=-WEIGHT, le=WEIGHT)]
# What the scorer's matcher can match: a keyword needs at least one letter or digit (the same
# rule services/scorer/matcher.py applies), and no control characters.
_MATCHABLE = re.compile(r"[^\W_]")


def _check_term(term: str, what: str = "keyword") -> str:
    if not isinstance(term, str) or not _MATCHABLE.search(term):
        raise ValueError(f"{what} {term[:40]!r} has no letters or digits to match")
    if not term.isprintable() or len(term) > 200:
        raise ValueError(f"{what} {term[:40]!r} must be one printable line of at most 200 characters")
    return term


class KeywordSpec(_Strict):
    """One interest term. A bare string in config.json means {"term": that string}."""

    term: str = Field(min_length=1)
    weight: Weight = 1.0
    aliases: tuple[str, ...] = ()
    case_sensitive: bool = False

    @field_validator("term")
    @classmethod
    def _term(cls, value: str) -> str:
        return _check_term(value)

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for alias in value:
            _check_term(alias, "alias")
        return value


# A bare string is checked like a spec's term (an empty or "(" keyword is refused at load time).
KeywordEntry = Union[Annotated[str, AfterValidator(_check_term)], KeywordSpec]


class InterestsConfig(_Strict):
    """Similarity to what the user reads (arXiv ids or short texts); off by default."""

    enabled: bool = False
    items: tuple[Annotated[str, Field(min_length=1, max_length=100_000)], ...] = ()
    method: Literal["tfidf", "embeddings"] = "tfidf"
    weight: float = Field(default=5.0, ge=0, le=WEIGHT)  # score += weight * cosine similarity (0..1)
    embedding_model: str = "text-embedding-3-small"


class FetchConfig(_Strict):
    """How the fetcher talks to arXiv. arXiv's terms: at most one request every 3 s."""

    min_interval_seconds: float = Field(default=3.0, ge=0, le=3600)
    timeout_seconds: float = Field(default=30.0, ge=0.1, le=3600)
    max_retries: int = Field(default=4, ge=0, le=10)
    backoff_cap_seconds: float = Field(default=120.0, gt=0, le=DAY)
    api_page_size: int = Field(default=2000, ge=1, le=2000)


class ScheduleConfig(_Strict):
    """When beat starts a pass: cron fields in `timezone`. Default: 00:30 US/Eastern Mon-Fri,
    half an hour after arXiv rebuilds its feeds."""

    minute: str = "30"
    hour: str = "0"
    day_of_week: str = "mon-fri"
    day_of_month: str = "*"
    month_of_year: str = "*"
    timezone: str = "America/New_York"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
    @classmethod
    def _cron(cls, value: str, info) -> str:
        # Checked here, as Celery's crontab parser reads them, so beat never fails at start-up.
        lo, hi = _CRON_RANGES[info.field_name]
        # Kept normalised (' 0-23/2, 5' -> '0-23/2,5'): Celery's parser takes no spaces.
        value = ",".join(part.strip() for part in str(value).lower().split(","))
        for part in value.split(","):
            m = re.fullmatch(r"(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/([0-9]{1,3}))?", part)
            # A step goes after '*' or a range only ('0/5' is not one Celery reads; '0-59/5' is).
            stepped_single = m is not None and m.group(2) is not None and m.group(1) != "*" and "-" not in m.group(1)
            if not m or stepped_single or (m.group(2) is not None and int(m.group(2)) == 0):
                raise ValueError(f"{value[:40]!r} is not a cron field (e.g. '*', '30', '0-23/2', 'mon-fri')")
            if m.group(1) != "*":
                for bound in m.group(1).split("-"):
                    n = _cron_value(bound, info.field_name == "day_of_week")
                    if n is None or not lo <= n <= hi:
                        raise ValueError(f"{value[:40]!r}: {bound[:20]!r} is not in {lo}..{hi}")
        return value

    def describe(self) -> str:
        """A human sentence for the README digest."""
        days = {"mon-fri": "Monday to Friday", "*": "every day"}.get(self.day_of_week, self.day_of_week)
        if self.minute.isdigit() and self.hour.isdigit():
            when = f"at {int(self.hour):02d}:{int(self.minute):02d}"
        else:
            when = f"at minute {self.minute} of hour {self.hour}"
        return f"{days} {when} ({self.timezone})"


_CRON_RANGES = {"minute": (0, 59), "hour": (0, 23), "day_of_week": (0, 6), "day_of_month": (1, 31),
                "month_of_year": (1, 12)}
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_value(text: str, weekday: bool) -> int | None:
    if text.isdigit():
        return int(text)
    if weekday and text[:3] in _WEEKDAYS:
        return _WEEKDAYS.index(text[:3])
    return None


class FeedsConfig(_Strict):
    """The rolling window the RSS/Atom/JSON feeds carry."""

    window_days: int = Field(default=30, ge=1, le=3650)
    max_items: int = Field(default=200, ge=1, le=5000)
    # The site's public base URL, for the feeds' self links and the OPML. None: the web service
    # uses the URL each request came to; the publisher's files use links relative to themselves.
    public_url: str | None = None

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        problem = http_url_problem(value)
        if problem is None and re.search(r"[?#@]", value):
            problem = "must be a plain base URL (no query, fragment or user name)"
        if problem:
            raise ValueError(f"expected an http(s) base URL such as https://digest.example.org: "
                             f"{masked_url(value, 80)!r} {problem}")
        return value.rstrip("/")


class FeedbackConfig(_Strict):
    """Readers' "more like this" / "less like this" (docs/DESIGN.md "Feedback")."""

    # Score points of a confident rating: the model adds weight x (2p - 1), p = p(like).
    weight: float = Field(default=6.0, ge=0, le=WEIGHT)
    # Ratings of EACH kind a profile needs before its ratings change its ranking.
    min_ratings: int = Field(default=3, ge=1, le=100_000)
    link_days: int = Field(default=90, ge=1, le=3650)  # feedback links expire after this
    rate_limit_per_minute: float = Field(default=30.0, gt=0, le=1_000_000)  # per client address, per web process


class SweepConfig(_Strict):
    """The sweep that re-enqueues work nobody is doing (the DB is the source of truth): run by
    beat, idle workers and `trigger --wait`, at most once per interval (shared.lifecycle)."""

    interval_seconds: float = Field(default=10.0, ge=0.1, le=DAY)
    # Work with no message anywhere (lost with Redis) is re-sent once untouched this long.
    stuck_after_seconds: float = Field(default=30.0, gt=0, le=30 * DAY)


class DeliveryConfig(_Strict):
    """How the deliverer sends digests (docs/DESIGN.md "Delivery")."""

    # Seconds one network operation may take (SMTP command, HTTP request, one git command).
    timeout_seconds: float = Field(default=60.0, ge=0.1, le=DAY)
    # A claimed delivery whose worker says nothing for this long is taken over by another (the
    # sweep): it must outlast the slowest send, or one recipient could get the digest twice.
    lease_seconds: float = Field(default=600.0, gt=0, le=7 * DAY)
    # Failed attempts (connection errors, SMTP 4xx, HTTP 429/5xx) before a delivery is marked
    # failed; `arxiv-bot deliver --retry-failed` sends it again later.
    max_retries: int = Field(default=8, ge=0, le=30)


class AISummaryConfig(_Strict):
    enabled: bool = True
    api_key_env: str = "DASHSCOPE_API_KEY"
    base_url: str = "https://dashscope.aliyuncs.com/compatible-mode/v1"
    model: str = "qwen-long"
    prompt_file: str | None = None
    max_papers_to_summarize: int = Field(default=15, ge=0, le=10_000)
    language: str = Field(default="zh", min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]+$")
    # "fulltext": the paper (arXiv HTML, else the PDF, else the abstract), sections selected so
    # the whole prompt stays within max_input_tokens; "abstract": the abstract only.
    input: Literal["abstract", "fulltext"] = "fulltext"
    max_input_tokens: int = Field(default=12000, ge=1024, le=10_000_000)
    temperature: float = Field(default=0.3, ge=0, le=2)
    max_tokens: int = Field(default=1500, ge=16, le=1_000_000)
    timeout: float = Field(default=120.0, ge=0.1, le=DAY)
    requests_per_minute: float = Field(default=60.0, gt=0, le=1_000_000)
    tokens_per_minute: float = Field(default=200000.0, gt=0, le=1e12)
    daily_token_budget: int | None = Field(default=None, ge=0, le=10**15)
    max_retries: int = Field(default=6, ge=0, le=20)
    # Renewed by the holder's heartbeat every 5 s while the call runs; a dead holder's lease is
    # taken over at once (shared.liveness) or, when its death cannot be known, after this long.
    lease_seconds: float = Field(default=30.0, gt=0, le=DAY)
    # Provider calls at once in embedded mode (`arxiv-bot run`); distributed mode scales with
    # summarizer replicas instead. Either way the rate limits above hold.
    max_workers: int = Field(default=4, ge=1, le=64)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("must be the NAME of an environment variable, not the key itself")
        return value

    @field_validator("prompt_file")
    @classmethod
    def _prompt_file(cls, value: str | None) -> str | None:
        if value is not None and (not value.isprintable() or len(value) > 4096):
            raise ValueError("must be a file path (one printable line)")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        problem = http_url_problem(value.strip())
        if problem:
            raise ValueError(f"expected the provider's http(s) URL: {masked_url(value, 80)!r} {problem}")
        return value.strip()


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EmailChannel(_Strict):
    """Mail the digest (SMTP_URL, SMTP_FROM from the environment)."""

    type: Literal["email"]
    to: tuple[str, ...] = Field(min_length=1)

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for addr in value:
            if not re.fullmatch(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+", addr):
                raise ValueError(f"{addr!r} is not an e-mail address")
        return tuple(dict.fromkeys(value))


class WebhookChannel(_Strict):
    """Post the digest to a chat platform or any HTTP receiver; the URL is a secret (env)."""

    type: Literal["webhook"]
    format: Literal["slack", "discord", "feishu", "telegram", "json"] = "json"
    url_env: str

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise ValueError("must be the NAME of an environment variable holding the URL")
        return value


class GitChannel(_Strict):
    """Commit the digest to a git repository (credentials from the environment or SSH agent)."""

    type: Literal["git"]
    repo: str = Field(min_length=1)
    branch: str = Field(default="main", pattern=r"^[A-Za-z0-9._/-]{1,100}$")
    path: str = Field(default="README.md", pattern=r"^[A-Za-z0-9._/ -]{1,200}$")

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("must be a relative path inside the repository")
        return value


# A followed author: a name with at least one letter (an empty name would follow nobody, or everyone).
def _check_author(name: str) -> str:
    if not re.search(r"[^\W\d_]", name) or not name.isprintable() or len(name) > 200:
        raise ValueError(f"author {name[:40]!r} must be a name (letters, one printable line, at most 200 characters)")
    return name


Author = Annotated[str, AfterValidator(_check_author)]

# A category_weights key: a category ("cs.DC") or an archive ("cs", every category in it). A key
# that is neither would silently weigh nothing, so it is refused like a bad category.
def _check_weighted(key: str) -> str:
    if not is_category(key):
        raise ValueError(f"{key[:40]!r} is not an arXiv category or archive such as 'cs.DC' or 'cs'")
    return key


CategoryWeights = dict[Annotated[str, AfterValidator(_check_weighted)], Weight]

Channel = Annotated[Union[EmailChannel, WebhookChannel, GitChannel], Field(discriminator="type")]
# [a-z0-9][a-z0-9-]{0,39}: safe in URLs, file names and e-mail subjects.
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
READER_KEYS = ("categories", "keywords", "exclude_keywords", "authors", "author_weight", "category_weights",
               "interests", "announce_types", "max_papers", "min_score", "max_papers_to_summarize", "language",
               "private", "deliver")


class ProfileSpec(_Strict):
    """One reader's (or team's) interests, digest and channels. Every key it does not set is
    inherited from the top level (max_papers_to_summarize and language from ai_summary)."""

    categories: tuple[str, ...] | None = None
    keywords: tuple[KeywordEntry, ...] | None = None
    exclude_keywords: tuple[KeywordEntry, ...] | None = None
    authors: tuple[Author, ...] | None = None
    author_weight: Weight | None = None
    category_weights: CategoryWeights | None = None
    interests: InterestsConfig | None = None
    announce_types: tuple[Literal["new", "cross", "replace", "replace-cross"], ...] | None = None
    max_papers: int | None = Field(default=None, ge=1, le=10_000)
    min_score: float | None = Field(default=None, ge=-1e6, le=1e6)
    max_papers_to_summarize: int | None = Field(default=None, ge=0, le=10_000)
    language: str | None = Field(default=None, min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]+$")
    private: bool = False
    deliver: tuple[Channel, ...] = ()

    @field_validator("categories")
    @classmethod
    def _categories(cls, value):
        return None if value is None else _check_categories(value)

    @field_validator("announce_types")
    @classmethod
    def _types(cls, value):
        if value is not None and not value:
            raise ValueError("at least one of " + ", ".join(ANNOUNCE_TYPES))
        return value


def _check_categories(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("at least one category is needed")
    for cat in value:
        if not is_category(cat):
            raise ValueError(f"{cat!r} is not an arXiv category such as 'cs.LG'")
    return tuple(dict.fromkeys(value))  # drop repeats, keep order


class Config(_Strict):
    # Editors validate config.json against `arxiv-bot config schema` when it names the schema.
    schema_url: str | None = Field(default=None, alias="$schema")
    categories: tuple[str, ...] = ("cs.AI", "cs.CL", "cs.DC", "cs.LG")
    keywords: tuple[KeywordEntry, ...] = ()
    exclude_keywords: tuple[KeywordEntry, ...] = ()
    authors: tuple[Author, ...] = ()
    author_weight: Weight = 2.0
    category_weights: CategoryWeights = Field(default_factory=dict)
    interests: InterestsConfig = InterestsConfig()
    announce_types: tuple[Literal["new", "cross", "replace", "replace-cross"], ...] = ("new",)
    max_papers: int = Field(default=30, ge=1, le=10_000)
    min_score: float = Field(default=0.0, ge=-1e6, le=1e6)
    days_back: int = Field(default=7, ge=0, le=90)
    contact: str = "https://github.com/arxiv-bot/arxiv-bot"
    fetch: FetchConfig = FetchConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    feeds: FeedsConfig = FeedsConfig()
    sweep: SweepConfig = SweepConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    feedback: FeedbackConfig = FeedbackConfig()
    ai_summary: AISummaryConfig = AISummaryConfig()
    # Readers (docs/DESIGN.md "Readers"); none: the top level is the single profile "default".
    profiles: dict[str, ProfileSpec] = Field(default_factory=dict)
    default_profile: str | None = None  # whose digest the root of OUTPUT_DIR and / show
    deliver: tuple[Channel, ...] = ()   # the "default" profile's channels when there are no profiles
    private: bool = False
    # Keys of the original bot that nothing here reads; accepted so its config loads unchanged.
    enable_deduplication: Any = None
    deduplication_methods: Any = None
    fetch_ratings: Any = None
    display_limit: Any = None

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_categories(value)

    @field_validator("contact")
    @classmethod
    def _contact(cls, value: str) -> str:
        # It goes into every request's User-Agent header: one printable line.
        if not value.strip() or len(value) > 200 or not value.isprintable():
            raise ValueError("must be one printable line (a URL or an e-mail address) of at most 200 characters")
        return value.strip()

    @field_validator("profiles")
    @classmethod
    def _slugs(cls, value: dict) -> dict:
        for slug in value:
            if not SLUG_RE.match(slug):
                raise ValueError(f"profile name {slug!r} must match [a-z0-9][a-z0-9-]{{0,39}}")
        return value

    @model_validator(mode="after")
    def _at_least_one_type(self) -> "Config":
        if not self.announce_types:
            raise ValueError("announce_types: at least one of " + ", ".join(ANNOUNCE_TYPES))
        return self

    def keyword_specs(self) -> list[KeywordSpec]:
        return [_spec(k) for k in self.keywords]

    def exclude_specs(self) -> list[KeywordSpec]:
        return [_spec(k) for k in self.exclude_keywords]

    def keyword_terms(self) -> list[str]:
        return [s.term for s in self.keyword_specs()]

    def startup_warnings(self) -> list[str]:
        """Valid but questionable settings, printed once at start-up."""
        out = []
        for key in ("enable_deduplication", "deduplication_methods", "fetch_ratings", "display_limit"):
            if getattr(self, key) is not None:
                out.append(f"config key '{key}' is accepted for compatibility and has no effect")
        ai = self.ai_summary
        if ai.lease_seconds < 15:
            # Renewed every 5 s: a lease shorter than three heartbeats can lapse during a live call
            # (a busy machine), and another replica would pay for the paper.
            out.append(f"ai_summary.lease_seconds ({ai.lease_seconds:g}) should be at least 15 (three heartbeats), "
                       "or a call may be paid twice")
        d = self.delivery
        if d.lease_seconds < 4 * d.timeout_seconds:
            # A git delivery runs several commands (clone, push, fetch, push) of timeout_seconds each.
            out.append(f"delivery.lease_seconds ({d.lease_seconds:g}) should be at least 4 x delivery.timeout_seconds "
                       f"({d.timeout_seconds:g}), or a slow delivery may be sent twice")
        channels = self.deliver or any(p.deliver for p in self.profiles.values())
        if channels and not self.feeds.public_url:
            out.append("feeds.public_url is not set: e-mails and chat messages cannot link to the profile's page")
        return out


def _spec(entry: KeywordEntry) -> KeywordSpec:
    return entry if isinstance(entry, KeywordSpec) else KeywordSpec(term=entry)


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names valid at `loc` (for 'did you mean' suggestions)."""
    skip = False
    for part in loc[:-1]:
        if skip:  # a profile's slug inside `profiles`
            skip = False
            continue
        if part in ("keywords", "exclude_keywords"):
            model = KeywordSpec
            continue
        if part == "profiles" and model is Config:
            model, skip = ProfileSpec, True
            continue
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        elif isinstance(ann, type(ProfileSpec | None)) and any(isinstance(a, type) and issubclass(a, BaseModel)
                                                               for a in ann.__args__):
            model = next(a for a in ann.__args__ if isinstance(a, type) and issubclass(a, BaseModel))
        else:
            return []
    return list(model.model_fields)


def _describe(exc: ValidationError, source: str) -> str:
    errors = exc.errors()
    # A union (string or object) reports one error per branch: show the branch the user meant.
    err = next((e for e in errors if not (e["type"] == "string_type" and isinstance(e.get("input"), dict))),
               errors[0])
    loc = tuple(p for p in err["loc"] if not isinstance(p, int) and p not in ("str", "KeywordSpec", "[key]")
                and not str(p).startswith("function-after["))
    key = _shown(".".join(str(p) for p in loc)) or "(top level)"
    if err["type"] == "extra_forbidden":
        guess = difflib.get_close_matches(str(loc[-1]), _known_keys(Config, loc), n=1)
        hint = f" (did you mean '{_shown('.'.join([*map(str, loc[:-1]), guess[0]]))}'?)" if guess else ""
        return f"{source}: unknown key '{key}'{hint}"
    msg = _shown(err["msg"].removeprefix("Value error, "), 300)
    return f"{source}: '{key}': {msg}"


def _shown(text: str, cap: int = 80) -> str:
    """A key from the user's file as a message may show it: control characters escaped (a key
    can carry a terminal escape sequence), at most `cap` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= cap else text[:cap - 1] + "…"


def json_schema() -> dict:
    """The JSON Schema of config.json (`arxiv-bot config schema`), for editors and CI checks."""
    schema = Config.model_json_schema(by_alias=True)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "arxiv-bot config.json",
              **schema}
    return schema


def parse_config(data: Any, source: str = "config.json") -> Config:
    """Validate already-decoded JSON; raise ConfigError with one line on any problem."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a JSON object")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def load_config(path: str | Path) -> Config:
    """Read and validate config.json at `path`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is not content
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (set ARXIV_BOT_CONFIG or --config)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    return parse_config(decode_json(text, str(path)), source=str(path))


def decode_json(text: str, source: str) -> Any:
    """json.loads with every failure as one ConfigError line (nesting too deep included)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid JSON: nested too deeply") from None

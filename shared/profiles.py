"""Readers: the profiles one deployment serves (docs/DESIGN.md "Readers").

A profile comes from config.json's `profiles` or from PROFILES_DIR/<slug>.json (same keys).
Every reader key it does not set is inherited from the top level (max_papers_to_summarize and
language from ai_summary). Without any profile the top level is the single profile "default":
today's behaviour and outputs, unchanged.

Bad input: config.json is validated as a whole at load (one line naming the profile and the
key). A broken PROFILES_DIR file (bad JSON, unknown key, bad slug, a slug config.json already
has) is skipped with a one-line warning naming the file and the key: the other readers keep
getting their digests.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .config import SLUG_RE, Config, InterestsConfig, KeywordSpec, ProfileSpec, _describe, decode_json
from .errors import ConfigError

log = logging.getLogger(__name__)
DEFAULT = "default"


@dataclass(frozen=True)
class Profile:
    """A profile with every reader key resolved (inheritance applied)."""

    slug: str
    categories: tuple[str, ...]
    keywords: tuple[KeywordSpec, ...]
    exclude_keywords: tuple[KeywordSpec, ...]
    authors: tuple[str, ...]
    author_weight: float
    category_weights: dict
    interests: InterestsConfig
    announce_types: tuple[str, ...]
    max_papers: int
    min_score: float
    max_papers_to_summarize: int
    language: str
    private: bool = False
    deliver: tuple = ()
    source: str = "config.json"

    def keyword_terms(self) -> list[str]:
        return [k.term for k in self.keywords]


@dataclass(frozen=True)
class Readers:
    """The deployment's profiles in a stable order (config.json first, then files by name)."""

    profiles: tuple[Profile, ...]
    default_slug: str | None  # None: every profile is private, the root publishes nothing
    warnings: tuple[str, ...] = field(default=())
    configured: bool = True  # False: no profile anywhere, the top level is "default"

    def get(self, slug: str) -> Profile | None:
        return next((p for p in self.profiles if p.slug == slug), None)

    @property
    def slugs(self) -> list[str]:
        return [p.slug for p in self.profiles]

    @property
    def default(self) -> Profile | None:
        return self.get(self.default_slug) if self.default_slug else None

    def page_path(self, slug: str) -> str:
        """The profile's page below the site's root: /p/<slug>/, or / without configured profiles."""
        return f"/p/{slug}/" if self.configured else "/"

    def public(self) -> list[Profile]:
        return [p for p in self.profiles if not p.private]

    def categories(self) -> list[str]:
        """The union of every profile's categories (one fetch serves them all), in first-seen order."""
        return list(dict.fromkeys(c for p in self.profiles for c in p.categories))


def _keywords(entries) -> tuple[KeywordSpec, ...]:
    return tuple(e if isinstance(e, KeywordSpec) else KeywordSpec(term=e) for e in entries)


def resolve(slug: str, spec: ProfileSpec, config: Config, source: str = "config.json") -> Profile:
    """Apply inheritance: the profile's own keys, else the top level's."""
    def pick(name, fallback):
        value = getattr(spec, name)
        return fallback if value is None else value

    ai = config.ai_summary
    return Profile(
        slug=slug, categories=pick("categories", config.categories),
        keywords=_keywords(pick("keywords", config.keywords)),
        exclude_keywords=_keywords(pick("exclude_keywords", config.exclude_keywords)),
        authors=pick("authors", config.authors), author_weight=pick("author_weight", config.author_weight),
        category_weights=dict(pick("category_weights", config.category_weights)),
        interests=pick("interests", config.interests), announce_types=pick("announce_types", config.announce_types),
        max_papers=pick("max_papers", config.max_papers), min_score=pick("min_score", config.min_score),
        max_papers_to_summarize=pick("max_papers_to_summarize", ai.max_papers_to_summarize),
        language=pick("language", ai.language), private=spec.private, deliver=tuple(spec.deliver), source=source)


def _top_level(config: Config) -> Profile:
    spec = ProfileSpec(private=config.private, deliver=config.deliver)
    return resolve(DEFAULT, spec, config)


def _from_file(path: Path) -> ProfileSpec:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None
    data = decode_json(text, str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    data.pop("$schema", None)
    try:
        return ProfileSpec.model_validate(data)
    except Exception as exc:  # pydantic ValidationError: one line naming the key
        if hasattr(exc, "errors"):
            raise ConfigError(_describe(exc, str(path)).replace("'profiles.", "'")) from None
        raise


def load(config: Config, profiles_dir: Path | None = None) -> Readers:
    """The deployment's readers (see the module docstring). Raises ConfigError only for a
    default_profile that names no profile at all."""
    warnings: list[str] = []
    profiles = [resolve(slug, spec, config) for slug, spec in config.profiles.items()]
    taken = {p.slug for p in profiles}
    if profiles_dir is not None and profiles_dir.is_dir():
        for path in sorted(profiles_dir.glob("*.json")):
            slug = path.stem
            try:
                if not SLUG_RE.match(slug):
                    raise ConfigError(f"{path}: profile name {slug!r} must match [a-z0-9][a-z0-9-]{{0,39}}")
                if slug in taken:
                    raise ConfigError(f"{path}: profile '{slug}' is already defined in config.json")
                profiles.append(resolve(slug, _from_file(path), config, source=str(path)))
                taken.add(slug)
            except ConfigError as exc:
                warnings.append(f"profile skipped: {exc}")
    for w in warnings:
        log.warning("%s", w)
    if not profiles:
        return Readers((_top_level(config),), DEFAULT, tuple(warnings), configured=False)
    public = [p.slug for p in profiles if not p.private]
    default = config.default_profile
    if default is not None and default not in public:
        why = "is private" if default in taken else "names no profile"
        raise ConfigError(f"default_profile: {default!r} {why}: the root of OUTPUT_DIR and / are public "
                          f"(public profiles: {', '.join(public) or 'none'})")
    if default is None:
        default = DEFAULT if DEFAULT in public else (public[0] if public else None)
    return Readers(tuple(profiles), default, tuple(warnings))

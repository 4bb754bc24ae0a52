"""Environment settings (docs/DESIGN.md "Environment"): each optional, each overrides config.json.

`Settings.from_env()` reads them once at start-up. The LLM key is looked up here and nowhere
else; `Settings.__repr__` never shows it, so printing or logging settings leaks no secret.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config, http_url_problem, load_config
from .errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///data/arxiv-bot.db"
DEFAULT_RSS_URL = "https://rss.arxiv.org/rss"
DEFAULT_API_URL = "https://export.arxiv.org/api/query"
DEFAULT_PDF_URL = "https://arxiv.org/pdf"
OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_HTML_URL = "https://arxiv.org/html"


@dataclass(frozen=True)
class Settings:
    config_path: Path
    database_url: str
    broker_url: str | None
    arxiv_rss_url: str
    arxiv_api_url: str
    arxiv_pdf_url: str
    output_dir: Path
    llm_base_url: str
    llm_model: str
    llm_key_env: str  # the variable the key came from, for messages ("set DASHSCOPE_API_KEY")
    llm_api_key: str | None = field(default=None, repr=False)
    redis_url: str | None = None  # for cross-process limits; the broker's Redis by default
    profiles_dir: Path | None = None  # PROFILES_DIR: one <slug>.json per reader
    secret_key: str | None = field(default=None, repr=False)  # SECRET_KEY: signs keys and feedback links
    arxiv_html_url: str = DEFAULT_HTML_URL  # arXiv's HTML renderings (full texts)
    smtp_url: str | None = field(default=None, repr=False)  # SMTP_URL: may carry a password
    smtp_from: str | None = None  # SMTP_FROM: the digests' sender address

    @classmethod
    def from_env(cls, config: Config, config_path: Path, env: dict[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        ai = config.ai_summary
        key_env = _key_variable(env, ai.api_key_env)
        # An OpenAI key goes to OpenAI unless a base URL says otherwise: never to the default
        # provider of config.json, which would receive (and could log) someone else's key.
        base_url = env.get("LLM_BASE_URL") or env.get("OPENAI_BASE_URL") or (
            OPENAI_BASE_URL if key_env == "OPENAI_API_KEY" else ai.base_url)
        broker = env.get("BROKER_URL") or None
        redis_url = env.get("REDIS_URL") or (broker if broker and broker.startswith("redis") else None)
        settings = cls(
            config_path=config_path,
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            broker_url=broker,
            arxiv_rss_url=(env.get("ARXIV_RSS_URL") or DEFAULT_RSS_URL).rstrip("/"),
            arxiv_api_url=env.get("ARXIV_API_URL") or DEFAULT_API_URL,
            arxiv_pdf_url=(env.get("ARXIV_PDF_URL") or DEFAULT_PDF_URL).rstrip("/"),
            arxiv_html_url=(env.get("ARXIV_HTML_URL") or DEFAULT_HTML_URL).rstrip("/"),
            output_dir=Path(env.get("OUTPUT_DIR") or "output"),
            llm_base_url=base_url,
            llm_model=env.get("LLM_MODEL") or ai.model,
            llm_key_env=key_env,
            llm_api_key=env.get(key_env) or None,
            redis_url=redis_url,
            profiles_dir=Path(env["PROFILES_DIR"]) if env.get("PROFILES_DIR") else None,
            secret_key=env.get("SECRET_KEY") or None,
            smtp_url=env.get("SMTP_URL") or None,
            smtp_from=env.get("SMTP_FROM") or None,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        from .redact import mask_url  # every URL in a message is shown masked

        for name, url in (("ARXIV_RSS_URL", self.arxiv_rss_url), ("ARXIV_API_URL", self.arxiv_api_url),
                          ("ARXIV_PDF_URL", self.arxiv_pdf_url), ("ARXIV_HTML_URL", self.arxiv_html_url),
                          ("LLM_BASE_URL", self.llm_base_url)):
            problem = http_url_problem(url)
            if problem:
                raise ConfigError(f"{name}: {mask_url(url)!r} is not an http(s) URL: it {problem}")
        if "://" not in self.database_url:
            raise ConfigError(f"DATABASE_URL: {mask_url(self.database_url)!r} is not a SQLAlchemy URL")
        if self.smtp_url:
            from .smtp_url import parse_smtp_url

            parse_smtp_url(self.smtp_url)  # one line naming what is wrong, never the password
        if self.smtp_from:
            from email.utils import parseaddr

            if not re.fullmatch(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+", parseaddr(self.smtp_from)[1]):
                raise ConfigError(f"SMTP_FROM: {self.smtp_from!r} is not an e-mail address "
                                  "(bot@example.org or \"arxiv-bot <bot@example.org>\")")

    @property
    def distributed(self) -> bool:
        return self.broker_url is not None

    @property
    def llm_enabled(self) -> bool:
        return self.llm_api_key is not None



def _key_variable(env, configured: str) -> str:
    """Where the LLM key comes from: LLM_API_KEY, else the variable config.json names, else the
    ecosystem's OPENAI_API_KEY; with none set, the configured name (for "set X" messages)."""
    for name in ("LLM_API_KEY", configured, "OPENAI_API_KEY"):
        if env.get(name):
            return name
    return configured


def load(config_path: str | Path | None = None, env: dict[str, str] | None = None) -> tuple[Config, Settings]:
    """Load config.json (ARXIV_BOT_CONFIG, else ./config.json) and the environment, validated."""
    env = os.environ if env is None else env
    path = Path(config_path or env.get("ARXIV_BOT_CONFIG") or "config.json")
    config = load_config(path)
    return config, Settings.from_env(config, path, env)

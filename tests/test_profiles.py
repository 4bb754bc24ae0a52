"""Readers: many profiles in one deployment (docs/DESIGN.md "Readers"), through the real CLI and
real workers, on the recorded 28 Nov 2024 day served by the local arXiv stand-in, with the
local OpenAI-compatible stand-in counting every paid call.

- One fetch of the union; each profile's digest from its own categories and keywords.
- Overlapping profiles pay once per shared (paper, language); another language is another call.
- Outputs under OUTPUT_DIR/p/<slug>/; the root holds the default profile's.
- Never twice across days; a replacement only when asked for, marked as updated.
- A profile removed from the config stops publishing and its outputs are removed.
- Without profiles the outputs are those of the top level as the single profile "default".
- Bad profiles: one clear line naming the profile and the key; a broken file is skipped.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from shared.config import parse_config
from shared.errors import ConfigError
from shared.profiles import load
from tests.procs import Stack, write_config
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin

KEY = "sk-test-profiles-secret"
DATA = Path(__file__).parent / "data" / "arxiv" / "rss"
DAY = DATA / "rss2_2024-11-28_all20archives_1504items.xml"
FILES = ("README.md", "feed.xml", "atom.xml", "feed.json", "papers.json", "index.html")
SYSTEMS = {"categories": ["cs.DC", "cs.LG"], "keywords": ["inference", "serving", "kernel", "GPU", "distributed", "LLM"],
           "language": "en", "max_papers_to_summarize": 4, "min_score": 1.0}
PROFILES = {
    "systems": SYSTEMS,
    "systems-zh": {**SYSTEMS, "language": "zh"},           # the same picks in another language
    "llm": {"categories": ["cs.CL", "cs.LG"], "keywords": ["LLM", "language model", "inference", "serving"],
            "language": "en", "max_papers_to_summarize": 4, "min_score": 1.0},
    "secret": {"categories": ["cs.CL"], "keywords": ["translation", "LLM"], "min_score": 1.0, "private": True},
}


def stack_for(tmp_path: Path, db_url: str, arxiv, llm=None, name: str = "run", **cfg) -> Stack:
    home = tmp_path / name
    home.mkdir(exist_ok=True)
    config = write_config(home, **cfg)
    return Stack(home, {"ARXIV_BOT_CONFIG": str(config), "DATABASE_URL": db_url, "OUTPUT_DIR": str(home / "output"),
                        "ARXIV_RSS_URL": arxiv.rss_url, "ARXIV_API_URL": arxiv.api_url,
                        "LLM_BASE_URL": llm.base_url if llm else "http://127.0.0.1:9/v1",
                        "LLM_API_KEY": KEY if llm else "", "DASHSCOPE_API_KEY": "", "BROKER_URL": "",
                        "REDIS_URL": "", "SECRET_KEY": "test-secret-key-for-profiles"})


def papers_of(out: Path, slug: str | None = None) -> list[dict]:
    return json.loads(((out / "p" / slug) if slug else out).joinpath("papers.json").read_text())


def calls_by_language(llm) -> Counter:
    """(title, language) of every chat request the provider received."""
    out = Counter()
    for _, path, body, _status in llm.requests:
        if path.endswith("/chat/completions"):
            text = "\n".join(str(m.get("content")) for m in body["messages"])
            title = re.search(r"<title>(.*?)</title>", text, re.S).group(1)
            out[(title, "zh" if "简体中文" in text else "en")] += 1
    return out


@pytest.fixture
def arxiv():
    with ArxivStandin() as server:
        yield server


def test_profiles_share_the_fetch_and_pay_once_per_paper_and_language(tmp_path, db_url, arxiv):
    with LLMStandin(api_key=KEY) as llm:
        stack = stack_for(tmp_path, db_url, arxiv, llm, profiles=PROFILES, default_profile="llm",
                          keywords=["never-matches-anything"])
        res = stack.cli("run")
        assert "published 2024-11-28" in res.stdout, res.stdout
        _check_shared(stack, llm, arxiv)
    status = stack.cli("status").stdout
    assert "profiles (latest pass):" in status and "secret" in status


@pytest.mark.slow
def test_distributed_profiles_pay_once_with_real_workers(tmp_path, pg_url, redis_url, arxiv):
    with LLMStandin(api_key=KEY) as llm:
        stack = stack_for(tmp_path, pg_url, arxiv, llm, profiles=PROFILES, default_profile="llm",
                          keywords=["never-matches-anything"])
        stack.env.update(BROKER_URL=redis_url, REDIS_URL=redis_url)
        try:
            stack.start_all(summarizers=2)
            res = stack.cli("trigger", "--wait", "--timeout", "240")
            assert "published 2024-11-28" in res.stdout, res.stdout
            _check_shared(stack, llm, arxiv)
        finally:
            stack.stop()


def _check_shared(stack: Stack, llm, arxiv) -> None:
    calls = calls_by_language(llm)
    feeds = [path.removeprefix("/rss/") for _, path, _q in arxiv.requests if path.startswith("/rss/")]
    out = stack.output_dir
    assert len(feeds) == 1 and set(feeds[0].split("+")) == {"cs.DC", "cs.LG", "cs.CL"}  # one fetch of the union
    digests = {slug: papers_of(out, slug) for slug in PROFILES}
    for slug, spec in PROFILES.items():
        cats = set(spec["categories"])
        assert digests[slug], slug
        assert all(cats & set(p["categories"]) for p in digests[slug]), slug
        for f in FILES:
            assert (out / "p" / slug / f).is_file(), (slug, f)
    # The root is the default profile's digest.
    assert papers_of(out) == digests["llm"]
    # The same picks in two languages: two summaries each; "llm" shares papers with "systems".
    picked = {slug: [p for p in digests[slug] if p["rank"] <= PROFILES[slug].get("max_papers_to_summarize", 15)]
              for slug in PROFILES}
    wanted = {(p["title"], PROFILES[slug].get("language", "zh")) for slug, ps in picked.items() for p in ps}
    shared = {p["id"] for p in picked["systems"]} & {p["id"] for p in picked["llm"]}
    assert shared, "the test needs profiles that pick the same paper"
    assert set(calls) == wanted and all(n == 1 for n in calls.values()), calls
    assert sum(calls.values()) < sum(len(ps) for ps in picked.values())  # fewer calls than picks
    for slug in ("systems", "systems-zh"):
        for p in picked[slug]:
            assert p["summary"] and p["summary"]["language"] == PROFILES[slug]["language"]
    # The same paper in two profiles of the same language carries the same summary.
    by_id = {p["id"]: p for p in digests["llm"]}
    for p in picked["systems"]:
        if p["id"] in by_id and by_id[p["id"]]["summary"]:
            assert p["summary"] == by_id[p["id"]]["summary"]


def test_never_twice_across_days_and_replacements_marked(tmp_path, sqlite_url, arxiv):
    profiles = {"plain": {"categories": ["cs.LG"], "keywords": ["learning", "model", "LLM"], "max_papers": 20},
                "updates": {"categories": ["cs.LG"], "keywords": ["learning", "model", "LLM"], "max_papers": 20,
                            "announce_types": ["new", "replace"]}}
    stack = stack_for(tmp_path, sqlite_url, arxiv, profiles=profiles)
    stack.cli("run", "--no-summaries")
    first = {slug: papers_of(stack.output_dir, slug) for slug in profiles}
    shown = [p["id"] for p in first["plain"]]
    # The next day re-announces every paper (as new), and three of the shown ones as replacements.
    bumped = {pid: 2 for pid in shown[:3]}
    day2 = _next_day(DAY, tmp_path / "day2.xml", bumped)
    arxiv.set_day(day2)
    res = stack.cli("run", "--no-summaries")
    assert "published 2024-11-29" in res.stdout, res.stdout
    second = {slug: papers_of(stack.output_dir, slug) for slug in profiles}
    assert second["plain"] and not {p["id"] for p in second["plain"]} & {p["id"] for p in first["plain"]}
    again = {p["id"]: p for p in second["updates"] if p["id"] in {p["id"] for p in first["updates"]}}
    assert set(again) == set(bumped) & {p["id"] for p in first["updates"]} and again
    assert all(p.get("updated") is True and p["announce_type"] == "replace" and p["version"] == 2
               for p in again.values())
    assert not any(p.get("updated") for p in second["plain"])
    assert all("updated" not in p for p in first["plain"])  # papers.json unchanged for other papers


def _next_day(src: Path, dst: Path, bump: dict[str, int]) -> Path:
    """Every item of `src` announced again on the next day; `bump` ids as replacements."""
    root = etree.fromstring(src.read_bytes())
    channel = root.find("channel")
    channel.find("pubDate").text = "Fri, 29 Nov 2024 00:00:00 -0500"
    ns = "{http://arxiv.org/schemas/atom}"
    for el in channel.iterchildren("item"):
        el.find("pubDate").text = "Fri, 29 Nov 2024 00:00:00 -0500"
        desc = el.find("description")
        m = re.match(r"arXiv:(\S+?)v(\d+) Announce Type: (\S+)", desc.text or "")
        if m and m.group(1) in bump:
            v = bump[m.group(1)]
            desc.text = re.sub(r"^arXiv:\S+ Announce Type: \S+", f"arXiv:{m.group(1)}v{v} Announce Type: replace",
                               desc.text)
            el.find("guid").text = f"oai:arXiv.org:{m.group(1)}v{v}"
            el.find(f"{ns}announce_type").text = "replace"
    dst.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    return dst


def test_removed_profile_stops_publishing_and_its_outputs_go(tmp_path, sqlite_url, arxiv):
    profiles = {"a": {"categories": ["cs.LG"], "keywords": ["LLM"]},
                "b": {"categories": ["cs.CL"], "keywords": ["LLM"]}}
    stack = stack_for(tmp_path, sqlite_url, arxiv, profiles=profiles)
    stack.cli("run", "--no-summaries")
    assert (stack.output_dir / "p" / "b" / "papers.json").is_file()
    write_config(stack.tmp, profiles={"a": profiles["a"]})
    stack.cli("run", "--no-summaries")
    assert not (stack.output_dir / "p" / "b").exists()
    assert (stack.output_dir / "p" / "a" / "papers.json").is_file()
    status = json.loads(stack.cli("status", "--json").stdout)
    assert [p["profile"] for p in status["profiles"]] == ["a"]


def test_without_profiles_the_top_level_is_the_default_profile(tmp_path, sqlite_url, arxiv):
    plain = stack_for(tmp_path, sqlite_url, arxiv, name="plain")
    plain.cli("run", "--no-summaries")
    explicit = stack_for(tmp_path, f"sqlite:///{tmp_path / 'explicit.db'}", arxiv, name="explicit",
                         profiles={"default": {}})
    explicit.cli("run", "--no-summaries")
    assert not (plain.output_dir / "p").exists()  # no profile: today's files only
    stamp = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?(\.\d+)?( ?UTC|Z|[+-]\d{2}:?\d{2})?"
                       r"|\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} ([+-]\d{4}|GMT)")  # ISO and RFC 822 times
    for name in FILES:
        a = (plain.output_dir / name).read_bytes()
        b = (explicit.output_dir / name).read_bytes()
        if name in ("papers.json",):
            assert a == b, name
        else:  # the generation time differs between the two runs, nothing else
            assert stamp.sub("T", a.decode()) == stamp.sub("T", b.decode()), name
    assert (explicit.output_dir / "p" / "default" / "papers.json").read_bytes() == \
        (explicit.output_dir / "papers.json").read_bytes()


# --- bad profiles -----------------------------------------------------------------------------

@pytest.mark.parametrize("profiles, message", [
    ({"nlp": {"keywrds": ["LLM"]}}, "unknown key 'profiles.nlp.keywrds' (did you mean 'profiles.nlp.keywords'?)"),
    ({"NLP Team": {}}, "profile name 'NLP Team' must match"),
    ({"nlp": {"categories": ["cs.CL", "computer science"]}}, "'profiles.nlp.categories': 'computer science' is not"),
    ({"nlp": {"deliver": [{"type": "webhook", "url_env": "https://hooks.example/x"}]}},
     "'profiles.nlp.deliver.webhook.url_env': must be the NAME of an environment variable"),
])
def test_bad_profile_in_config_is_one_line_naming_it(profiles, message):
    with pytest.raises(ConfigError) as info:
        parse_config({"profiles": profiles})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_broken_profile_files_are_skipped_with_a_warning(tmp_path):
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "good.json").write_text(json.dumps({"categories": ["cs.LG"], "keywords": ["LLM"]}))
    (folder / "typo.json").write_text(json.dumps({"categories": ["cs.LG"], "keywrds": ["LLM"]}))
    (folder / "broken.json").write_text('{"categories": ["cs.LG"],')
    (folder / "Bad Name.json").write_text("{}")
    (folder / "dup.json").write_text("{}")
    (folder / "badcat.json").write_text(json.dumps({"categories": ["CS"]}))
    cfg = parse_config({"profiles": {"dup": {"keywords": ["x"]}}})
    readers = load(cfg, folder)
    assert readers.slugs == ["dup", "good"]
    warnings = "\n".join(readers.warnings)
    assert "typo.json: unknown key 'keywrds' (did you mean 'keywords'?)" in warnings
    assert "broken.json: invalid JSON at line 1" in warnings
    assert "profile name 'Bad Name' must match" in warnings
    assert "dup.json: profile 'dup' is already defined in config.json" in warnings
    assert "badcat.json: 'categories': 'CS' is not an arXiv category" in warnings
    assert len(readers.warnings) == 5 and all("\n" not in w for w in readers.warnings)
    # Inheritance: a file sets only what differs.
    good = readers.get("good")
    assert good.max_papers == cfg.max_papers and good.language == cfg.ai_summary.language


def test_profile_cli_lists_and_prints_urls(tmp_path, sqlite_url, arxiv):
    stack = stack_for(tmp_path, sqlite_url, arxiv, profiles=PROFILES, feeds={"public_url": "https://d.example"})
    listing = json.loads(stack.cli("profile", "list", "--json").stdout)
    assert [p["slug"] for p in listing["profiles"]] == list(PROFILES)
    assert next(p for p in listing["profiles"] if p["slug"] == "secret")["private"] is True
    urls = stack.cli("profile", "url", "llm").stdout
    assert "https://d.example/p/llm/feed.xml" in urls and "key=" not in urls
    secret = stack.cli("profile", "url", "secret").stdout
    assert re.search(r"https://d.example/p/secret/feed.xml\?key=[\w-]{20,}", secret)
    bad = stack.cli("profile", "url", "nobody", check=False)
    assert bad.returncode == 1 and "no profile named 'nobody'" in bad.stderr


# --- over HTTP: per-profile routes, private keys, the list of readers -------------------------

def test_profile_routes_private_keys_and_the_list_over_http(tmp_path, sqlite_url, arxiv):
    import httpx

    from shared.settings import load as load_settings
    from tests.test_web import serve
    from web.app import create_app

    stack = stack_for(tmp_path, sqlite_url, arxiv, profiles=PROFILES, default_profile="llm")
    stack.cli("run", "--no-summaries")
    config, settings = load_settings(stack.env["ARXIV_BOT_CONFIG"], stack.env)
    key = re.search(r"\?key=([\w-]+)", stack.cli("profile", "url", "secret").stdout).group(1)
    with serve(create_app(settings, config=config)) as base, httpx.Client(base_url=base, timeout=20) as web:
        for slug in ("systems", "llm"):
            page = web.get(f"/p/{slug}/")
            assert page.status_code == 200 and "public, max-age" in page.headers["cache-control"]
            data = web.get(f"/p/{slug}/papers.json").json()
            assert data == papers_of(stack.output_dir, slug)
            assert web.get(f"/p/{slug}/feed.xml").status_code == 200
        assert web.get("/papers.json").json() == papers_of(stack.output_dir, "llm")  # the default profile
        assert web.get("/p/systems/papers.json?category=cs.CL").status_code == 404  # not its category
        # Private: without the key, or with a wrong one, exactly an unknown profile's answer.
        for url in ("/p/secret/papers.json", f"/p/secret/papers.json?key={key[:-1]}x", "/p/secret/",
                    "/p/secret/feed.xml?key=", f"/p/secret/day/2024-11-28?key={key.upper()}"):
            r = web.get(url)
            unknown = web.get(url.replace("secret", "nobody").split("?")[0])
            assert r.status_code == 404 == unknown.status_code, url
            assert r.headers["content-type"] == unknown.headers["content-type"], url
            assert r.text.replace("secret", "nobody") == unknown.text, url
        ok = web.get(f"/p/secret/papers.json?key={key}")
        assert ok.status_code == 200 and ok.json() == papers_of(stack.output_dir, "secret")
        assert "private" in ok.headers["cache-control"]
        page = web.get(f"/p/secret/?key={key}")
        assert page.status_code == 200 and f"feed.xml?key={key}" in page.text  # subscribe from the page
        assert web.get("/p/secret/papers.json").status_code == 200  # the cookie the keyed visit set
        web.cookies.clear()
        listing = web.get("/profiles")
        assert listing.status_code == 200 and "/p/systems/" in listing.text and "secret" not in listing.text
        opml = etree.fromstring(web.get("/profiles.opml").content)
        urls = [o.get("xmlUrl") for o in opml.iter("outline") if o.get("xmlUrl")]
        assert urls == [f"{base}/p/{slug}/feed.xml" for slug in ("systems", "systems-zh", "llm")]
        # Rotating the key: the old one stops working at once, the new one works.
        stack.cli("profile", "rotate", "secret")
        new = re.search(r"\?key=([\w-]+)", stack.cli("profile", "url", "secret").stdout).group(1)
        assert new != key
        import time

        time.sleep(1.2)  # the web's cache re-reads the key generation at most once a second
        assert web.get(f"/p/secret/papers.json?key={key}").status_code == 404
        assert web.get(f"/p/secret/papers.json?key={new}").status_code == 200

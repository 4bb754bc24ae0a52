"""`arxiv-bot feedback add|import|export`: every import format (JSON lines, BibTeX, CSL-JSON as
Zotero writes them, a plain list of ids), papers the database lacks fetched through the query
API of the local arXiv stand-in (over HTTP), bad input refused with one line and nothing
imported; SQLite and PostgreSQL. Hypothesis drives the parsers with arbitrary and generated
files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from arxiv_bot.feedback_formats import FormatError, bibtex_entries, parse
from shared.db import make_engine, session_factory
from shared.models import Paper, Rating
from tests.procs import Stack, write_config
from tests.standins.arxiv import ArxivStandin

# Papers of the recorded day (the stand-in's query API serves them; the database starts empty).
A, B, C, D = "2411.17700", "2411.18050", "2411.17712", "2411.18376"

BIBTEX = r"""% Exported from Zotero
@article{vaswani2017,
  title = {Attention Is {All} You Need},
  author = {Vaswani, Ashish and Shazeer, Noam},
  year = {2017},
  eprint = {2411.17700},
  archiveprefix = {arXiv},
  primaryclass = {cs.CL},
}
@misc{second, title = "A {Preprint}", url = {https://arxiv.org/abs/2411.18050v1}, note = "see " # "arXiv"}
@book{knuth1997, title = {The Art of Computer Programming}, publisher = {Addison-Wesley}}
"""
CSL = [  # what Zotero's "CSL JSON" export gives for two preprints and a book
    {"id": "http://zotero.org/users/1/items/AB12", "type": "article", "title": "One",
     "URL": "http://arxiv.org/abs/2411.17712", "DOI": "10.48550/arXiv.2411.17712", "number": "arXiv:2411.17712",
     "publisher": "arXiv", "source": "arXiv.org"},
    {"id": "http://zotero.org/users/1/items/CD34", "type": "article", "title": "Two",
     "DOI": "10.48550/arXiv.2411.18376"},
    {"id": "http://zotero.org/users/1/items/EF56", "type": "book", "title": "A book", "ISBN": "978-0"},
]


@pytest.fixture
def arxiv():
    with ArxivStandin() as server:
        yield server


def stack_for(tmp_path: Path, db_url: str, arxiv) -> Stack:
    config = write_config(tmp_path, contact="mailto:feedback-test@example.org")
    return Stack(tmp_path, {"ARXIV_BOT_CONFIG": str(config), "DATABASE_URL": db_url,
                            "OUTPUT_DIR": str(tmp_path / "output"), "ARXIV_RSS_URL": arxiv.rss_url,
                            "ARXIV_API_URL": arxiv.api_url, "LLM_API_KEY": "", "DASHSCOPE_API_KEY": "",
                            "BROKER_URL": "", "REDIS_URL": ""})


def stored(db_url: str) -> tuple[dict, set]:
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as s:
            return ({r.paper_id: (r.rating, r.source) for r in s.scalars(select(Rating))},
                    set(s.scalars(select(Paper.id))))
    finally:
        engine.dispose()


def id_lookups(arxiv) -> list[str]:
    return [q for _t, path, q in arxiv.requests if path == "/api/query" and "id_list=" in q]


def test_import_each_format_fetching_what_the_database_lacks(tmp_path, db_url, arxiv):
    stack = stack_for(tmp_path, db_url, arxiv)
    (tmp_path / "lib.bib").write_text(BIBTEX)
    res = stack.cli("feedback", "import", "default", str(tmp_path / "lib.bib"))
    assert "imported 2 ratings (2 up, 0 down)" in res.stdout and "(BibTeX)" in res.stdout
    assert "2 papers fetched from arXiv" in res.stdout and "1 entries without an arXiv id skipped" in res.stdout
    lookups = id_lookups(arxiv)
    assert len(lookups) == 1 and set(lookups[0].split("id_list=")[1].split("&")[0].split(",")) == {A, B}
    assert arxiv.user_agents[-1] == "arxiv-bot/0.1 (+mailto:feedback-test@example.org)"  # the fetcher's client
    ratings, papers = stored(db_url)
    assert ratings == {A: ("up", "import"), B: ("up", "import")} and papers == {A, B}

    (tmp_path / "zotero.json").write_text(json.dumps(CSL, indent=2))
    res = stack.cli("feedback", "import", "default", str(tmp_path / "zotero.json"))
    assert "imported 2 ratings (2 up, 0 down)" in res.stdout and "(CSL-JSON)" in res.stdout

    # JSON lines (what export writes) and a plain list: papers already stored are not fetched again.
    (tmp_path / "votes.jsonl").write_text(json.dumps({"id": A, "rating": "down"}) + "\n"
                                          + json.dumps({"id": f"arXiv:{C}v2", "rating": "down"}) + "\n")
    res = stack.cli("feedback", "import", "default", str(tmp_path / "votes.jsonl"))
    assert "(JSON lines)" in res.stdout and "0 papers fetched" in res.stdout and "2 new or changed" in res.stdout
    (tmp_path / "ids.txt").write_text(f"# liked\nhttps://arxiv.org/abs/{D}\n{B} down\n")
    res = stack.cli("feedback", "import", "default", str(tmp_path / "ids.txt"))
    assert "(list of arXiv ids)" in res.stdout and "imported 2 ratings (1 up, 1 down)" in res.stdout
    assert len(id_lookups(arxiv)) == 2  # only the CSL file had papers the database lacked

    ratings, papers = stored(db_url)
    assert {k: v[0] for k, v in ratings.items()} == {A: "down", B: "down", C: "down", D: "up"}
    assert papers == {A, B, C, D}
    export = stack.cli("feedback", "export", "default").stdout.splitlines()
    assert [json.loads(line) for line in export] == [{"id": k, "rating": ratings[k][0]} for k in sorted(ratings)]

    # add: one rating; the last one wins; the same one again changes nothing.
    assert "rated up" in stack.cli("feedback", "add", "default", A, "up").stdout
    assert "unchanged" in stack.cli("feedback", "add", "default", f"arXiv:{A}", "up").stdout
    assert stored(db_url)[0][A] == ("up", "cli")


def test_bad_input_imports_nothing(tmp_path, sqlite_url, arxiv):
    db_url = sqlite_url  # the order (everything checked and fetched before one transaction) is the point
    stack = stack_for(tmp_path, db_url, arxiv)
    stack.cli("feedback", "add", "default", A, "up")
    before = stored(db_url)
    bad = {
        "broken.jsonl": (f'{{"id": "{B}", "rating": "up"}}\n{{"id": "{C}", "rating": "maybe"}}\n', "line 2"),
        "broken.bib": (BIBTEX + "@article{open, title = {no end}\n", "is not closed"),
        "books.json": (json.dumps([CSL[2]]), "no arXiv id"),
        "ids.txt": (f"{B}\nnot an id\n", "line 2"),
        "unknown.txt": (f"{B}\n2411.99999\n", "arXiv does not know 2411.99999"),
        "empty.txt": ("\n", "empty"),
    }
    for name, (text, why) in bad.items():
        (tmp_path / name).write_text(text)
        res = stack.cli("feedback", "import", "default", str(tmp_path / name), check=False)
        assert res.returncode != 0 and why in res.stderr, (name, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
        assert stored(db_url) == before, name  # not even the good lines, nor their papers
    res = stack.cli("feedback", "import", "nobody", str(tmp_path / "ids.txt"), check=False)
    assert res.returncode != 0 and "no profile named 'nobody'" in res.stderr
    res = stack.cli("feedback", "import", "default", str(tmp_path / "missing.bib"), check=False)
    assert res.returncode != 0 and "cannot read it" in res.stderr
    res = stack.cli("feedback", "add", "default", "not-an-id", "up", check=False)
    assert res.returncode == 2 and "is not an arXiv id" in res.stderr
    arxiv.fail_next("503", "503", "503")  # arXiv down after retries: one line, nothing recorded
    res = stack.cli("feedback", "add", "default", D, "up", check=False)
    assert res.returncode == 1 and "cannot look up 1 papers on arXiv" in res.stderr
    assert stored(db_url) == before


# -- the parsers --------------------------------------------------------------------------------
def test_parsers_find_arxiv_ids_where_exports_put_them():
    assert parse(BIBTEX).ratings == {A: "up", B: "up"} and parse(BIBTEX).skipped == 1
    assert parse(json.dumps(CSL)).ratings == {C: "up", D: "up"}
    assert parse(json.dumps({"items": CSL[:1]})).ratings == {C: "up"}
    more = r"""@article{j, journal = {arXiv preprint arXiv:1706.03762}, year = 2017}
@misc(p, eprint = "hep-th/9901001", eprinttype = "arxiv")
@string{foo = "bar"} @comment{@article{x, eprint={1111.11111}}}
@article{d, doi = {https://doi.org/10.48550/arXiv.2301.00001}}
@article{other, eprint = {1234.5678}, archiveprefix = {HAL}}"""
    assert parse(more).ratings == {"1706.03762": "up", "hep-th/9901001": "up", "2301.00001": "up"}
    assert parse(more).skipped == 1  # an eprint of another archive is not an arXiv id
    assert [e.get("title") for e in bibtex_entries(BIBTEX)] == ["Attention Is All You Need", "A Preprint",
                                                                 "The Art of Computer Programming"]


ARXIV_ID = st.from_regex(r"(0[7-9]|1\d|2[0-4])(0[1-9]|1[0-2])\.\d{5}|[a-z]{2,8}(-[a-z]{2})?/\d{7}", fullmatch=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(list('@{}()"=,#%\n \t:./-[]') + ["arXiv", "up", "down", "2411.17700", "article",
                                                                  "eprint", "id", "rating", "@article{"]),
                max_size=80).map("".join) | st.text(max_size=200))
def test_parse_answers_ratings_or_one_line(text):
    try:
        got = parse(text, "f")
    except FormatError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("f")
    else:
        assert got.ratings and all(r in ("up", "down") for r in got.ratings.values())
        from shared.arxiv import split_id

        assert all(split_id(pid) and split_id(pid)[1] is None for pid in got.ratings)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(ARXIV_ID, st.sampled_from(["up", "down"]), min_size=1, max_size=20))
def test_exports_and_lists_round_trip(ratings):
    lines = "".join(json.dumps({"id": k, "rating": v}) + "\n" for k, v in ratings.items())
    assert parse(lines).ratings == ratings
    listed = "".join(f"{k} {v}\n" for k, v in ratings.items())
    assert parse(listed).ratings == ratings


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(ARXIV_ID, st.sampled_from(["eprint", "url", "doi", "journal"]),
                          st.text(alphabet=st.characters(blacklist_characters='{}"@\\', blacklist_categories=["Cs"]),
                                  max_size=30)), min_size=1, max_size=10))
def test_generated_bibtex_round_trips(entries):
    parts = []
    for n, (pid, where, title) in enumerate(entries):
        value = {"eprint": f"eprint = {{{pid}}}, archivePrefix = {{arXiv}}", "url": f"url = {{https://arxiv.org/abs/{pid}}}",
                 "doi": f"doi = {{10.48550/arXiv.{pid}}}", "journal": f'journal = "arXiv preprint arXiv:{pid}"'}[where]
        parts.append(f"@article{{k{n},\n  title = {{{title}}},\n  {value},\n}}\n")
    assert parse("".join(parts)).ratings == {pid: "up" for pid, _, _ in entries}

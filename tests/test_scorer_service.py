"""The scorer service with real processes: the day's selection exactly once with two (then
three) `arxiv-bot worker scorer` processes over a real Redis, redelivered batches and a scorer
SIGKILLed mid-pass; and `arxiv-bot run` (embedded, real CLI) on the recorded 28 Nov 2024 day with
different configs: min_score, tie order, announce_types, exclusions, interests (TF-IDF and
embeddings over the local OpenAI-compatible stand-in), explanations in papers.json and README.md.
"""
from __future__ import annotations

import base64
import json
import time

import pytest
import redis
from sqlalchemy import func, select

from shared import names
from shared.db import make_engine, session_factory
from shared.models import PASS_SCORING, SUM_PENDING, Pass, PassItem
from tests.procs import Stack, write_config
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin

LLM_KEY = "sk-test-scorer-secret"
EDGE = "2411.17712"  # new: Generative AI on the Edge: Architecture and Performance Evaluation


@pytest.fixture
def arxiv():
    with ArxivStandin() as server:
        yield server


def make_stack(tmp_path, db_url, arxiv, name="run", llm=None, broker_url=None, **cfg) -> Stack:
    home = tmp_path / name
    home.mkdir()
    config = write_config(home, **cfg)
    env = {"ARXIV_BOT_CONFIG": str(config), "DATABASE_URL": db_url, "OUTPUT_DIR": str(home / "output"),
           "ARXIV_RSS_URL": arxiv.rss_url, "ARXIV_API_URL": arxiv.api_url,
           "LLM_BASE_URL": llm.base_url if llm else "http://127.0.0.1:9/v1",
           "LLM_API_KEY": LLM_KEY if llm or broker_url else "", "DASHSCOPE_API_KEY": "",
           "BROKER_URL": broker_url or "", "REDIS_URL": broker_url or ""}
    return Stack(home, env)


def run_day(stack: Stack, *args: str) -> list[dict]:
    res = stack.cli("run", "--no-summaries", *args)
    assert "published 2024-11-28" in res.stdout, res.stdout
    assert "Traceback" not in res.stdout + res.stderr and LLM_KEY not in res.stdout + res.stderr
    return json.loads((stack.output_dir / "papers.json").read_text())


def last_items(db_url: str) -> dict[str, PassItem]:
    """paper id -> pass item of the newest pass."""
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as s:
            pid = s.scalar(select(func.max(Pass.id)))
            return {i.paper_id: i for i in s.scalars(select(PassItem).where(PassItem.pass_id == pid))}
    finally:
        engine.dispose()


def check_explained(papers: list[dict], readme: str) -> None:
    """Every digest paper says why: matched terms, where, points summing to its score."""
    for p in papers:
        assert p["matched"] and p["match_details"], p["id"]
        assert [d["term"] for d in p["match_details"]] == p["matched"]
        assert p["score"] == pytest.approx(sum(d["points"] for d in p["match_details"]), abs=1e-3)
        for d in p["match_details"]:
            assert set(d["where"]) <= {"title", "abstract", "authors", "similarity"} and d["where"]
    assert readme.count("**Matched**: ") == len(papers)
    first = papers[0]["match_details"][0]
    assert f"**Matched**: {first['term']} ({'/'.join(first['where'])})" in readme


# --- min_score, tie order, explanations ------------------------------------------------------

def test_min_score_and_deterministic_ties(tmp_path, sqlite_url, arxiv):
    stack = make_stack(tmp_path, sqlite_url, arxiv, min_score=3.0, max_papers=1000)
    papers = run_day(stack)
    items = last_items(sqlite_url)
    assert papers and all(p["score"] >= 3.0 for p in papers)
    assert [p["rank"] for p in papers] == list(range(1, len(papers) + 1))
    assert [p["id"] for p in papers] == [p["id"] for p in sorted(papers, key=lambda p: (-p["score"], p["id"]))]
    scores = [p["score"] for p in papers]
    assert len(set(scores)) < len(scores)  # ties exist, and they were broken by id
    # Papers that matched but scored below min_score were scored, never selected.
    below = [i for i in items.values() if i.matched and not i.excluded_by and i.announce_type == "new"
             and i.score < 3.0]
    assert below and all(i.rank is None for i in below)
    assert {p["id"] for p in papers} == {i.paper_id for i in items.values() if i.candidate}
    check_explained(papers, (stack.output_dir / "README.md").read_text())
    # The original's precision complaint: "RL" never matches inside "world"/"control"/"URL".
    for p in papers:
        for d in p["match_details"]:
            if d["term"] == "RL":
                text = (p["title"] + " " + p["abstract"]).replace("-", " ")
                assert any(w.strip("().,:;") in ("RL", "RLs") for w in text.split()), p["id"]


def test_announce_types_and_exclusions(tmp_path, arxiv, sqlite_url):
    only_new = run_day(make_stack(tmp_path, sqlite_url, arxiv, "new", min_score=2.5, max_papers=1000))
    items = last_items(sqlite_url)
    assert {p["announce_type"] for p in only_new} == {"new"}
    excluded = {i.paper_id: i.excluded_by for i in items.values() if i.excluded_by}
    assert set(excluded.values()) <= {"survey", "review", "tutorial"} and excluded
    assert not excluded.keys() & {p["id"] for p in only_new}
    # Exclusion is visible and would have mattered: excluded papers that match and score enough.
    strong = {pid for pid, i in items.items() if i.excluded_by and i.matched and i.score >= 2.5
              and i.announce_type == "new"}
    assert strong

    db2 = f"sqlite:///{tmp_path / 'second.db'}"
    both = run_day(make_stack(tmp_path, db2, arxiv, "cross", min_score=2.5, max_papers=1000,
                              announce_types=["new", "cross"], exclude_keywords=[]))
    types = {p["announce_type"] for p in both}
    assert types == {"new", "cross"}
    assert {p["id"] for p in only_new} < {p["id"] for p in both}
    assert strong <= {p["id"] for p in both}  # without exclusions they are in the digest
    assert all(p["score"] >= 2.5 for p in both)


# --- interests -------------------------------------------------------------------------------

INTEREST_TEXT = "speculative decoding to speed up large language model inference on GPUs"


def interest_details(p: dict) -> list[dict]:
    return [d for d in p["match_details"] if d["term"] == "interests"]


def test_interests_tfidf_in_score_and_outputs(tmp_path, sqlite_url, arxiv):
    stack = make_stack(tmp_path, sqlite_url, arxiv, min_score=2.5, max_papers=1000,
                       interests={"enabled": True, "items": [f"arXiv:{EDGE}v1", INTEREST_TEXT], "weight": 4.0})
    papers = run_day(stack)
    by_id = {p["id"]: p for p in papers}
    # The paper named as an interest is identical to it: similarity 1, full weight.
    quant = interest_details(by_id[EDGE])
    assert quant == [{"term": "interests", "where": ["similarity"], "points": 4.0, "similarity": 1.0}]
    with_interest = [p for p in papers if interest_details(p)]
    assert 1 < len(with_interest) < len(papers)  # below a similarity of 0.1 nothing is added
    for p in with_interest:
        d = interest_details(p)[0]
        assert d["similarity"] >= 0.1 and 0 < d["points"] <= 4.0 and d["points"] == pytest.approx(4.0 * d["similarity"], abs=1e-3)
        assert p["matched"][-1] == "interests"
    readme = (stack.output_dir / "README.md").read_text()
    check_explained(papers, readme)
    assert "interests (similarity)" in readme
    status = json.loads(stack.cli("status", "--json").stdout)
    assert status["passes"][0]["note"] is None


def test_interests_embeddings_over_the_api(tmp_path, sqlite_url, arxiv):
    with LLMStandin(api_key=LLM_KEY) as llm:
        stack = make_stack(tmp_path, sqlite_url, arxiv, llm=llm, min_score=2.5, max_papers=1000,
                           interests={"enabled": True, "method": "embeddings", "weight": 2.0,
                                      "items": [EDGE, INTEREST_TEXT]})
        papers = run_day(stack)
        embedding_calls = [r for r in llm.requests if r[1].endswith("/embeddings")]
    quant = interest_details({p["id"]: p for p in papers}[EDGE])[0]
    assert quant["similarity"] == pytest.approx(1.0, abs=1e-3) and quant["points"] == pytest.approx(2.0, abs=1e-3)
    check_explained(papers, (stack.output_dir / "README.md").read_text())
    # The interest texts are embedded once per pass, not once per batch.
    interest_calls = [r for r in embedding_calls if r[2].get("input") and INTEREST_TEXT in r[2]["input"]]
    assert len(interest_calls) == 1 and len(embedding_calls) > 1


def test_interests_embeddings_without_key_fall_back_to_keywords(tmp_path, sqlite_url, arxiv):
    stack = make_stack(tmp_path, sqlite_url, arxiv, min_score=2.5,
                       interests={"enabled": True, "method": "embeddings", "items": [INTEREST_TEXT]})
    papers = run_day(stack)
    assert len(papers) == 30 and not any(interest_details(p) for p in papers)
    note = json.loads(stack.cli("status", "--json").stdout)["passes"][0]["note"]
    assert note == ("interests.method 'embeddings' needs an API key: set DASHSCOPE_API_KEY; "
                    "scoring on keywords only")


# --- selection exactly once, real workers ----------------------------------------------------

BATCH = 8


def summarize_messages(r: redis.Redis) -> list[dict]:
    """kwargs of every message waiting on the `summarize` queue (Celery protocol 2, JSON)."""
    out = []
    for raw in r.lrange(names.SUMMARIZE_QUEUE, 0, -1):
        body = json.loads(base64.b64decode(json.loads(raw)["body"]))
        out.append(body[1])
    return out


def wait_for(cond, timeout: float = 90, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def test_selection_exactly_once_two_scorers_kill_and_redelivery(tmp_path, db_url, redis_url, arxiv):
    from shared.celery_app import create_app
    from shared.settings import load

    stack = make_stack(tmp_path, db_url, arxiv, broker_url=redis_url, min_score=2.5)
    run_day(stack)  # the real fetcher fills the papers table (and a first, published pass)

    # A second pass, in the scoring stage, over the same papers: built directly in the DB.
    engine = make_engine(db_url)
    S = session_factory(engine)
    with S.begin() as s:
        first = s.scalar(select(func.max(Pass.id)))
        olds = list(s.scalars(select(PassItem).where(PassItem.pass_id == first).order_by(PassItem.paper_id)))
        p = Pass(status=PASS_SCORING, active=1, trigger="test", day=s.get(Pass, first).day, fetched=len(olds))
        s.add(p)
        s.flush()
        pass_id = p.id
        s.add_all(PassItem(pass_id=pass_id, paper_id=i.paper_id, version=i.version, announce_type=i.announce_type,
                           announced=i.announced) for i in olds)
    ids = [i.paper_id for i in olds]
    batches = [ids[i:i + BATCH] for i in range(0, len(ids), BATCH)]
    held = batches.pop()  # sent only after the kill: the pass cannot finish before it

    def count(*where) -> int:
        with S() as s:
            return s.scalar(select(func.count()).select_from(PassItem).where(PassItem.pass_id == pass_id, *where))

    def status() -> str:
        with S() as s:
            return s.get(Pass, pass_id).status

    config, settings = load(stack.env["ARXIV_BOT_CONFIG"], stack.env)
    app = create_app(settings, config)
    send = lambda b: app.send_task(names.SCORE_BATCH, kwargs={"pass_id": pass_id, "paper_ids": b},  # noqa: E731
                                   queue=names.SCORE_QUEUE, routing_key=names.SCORE_QUEUE)
    r = redis.Redis.from_url(redis_url)
    try:
        a, _b = stack.start_worker("scorer", wait=False), stack.start_worker("scorer", wait=False)
        a.wait_ready(), _b.wait_ready()
        for b in batches + batches:  # every batch delivered twice
            send(b)
        wait_for(lambda: count(PassItem.scored.is_(True)) >= len(ids) // 4, what="no scoring progress")
        a.kill()
        assert status() == PASS_SCORING and count(PassItem.scored.is_(False)) >= len(held)
        stack.start_worker("scorer")  # the replacement
        # What the sweep does after a lost message: re-send every unscored item, then nudge.
        with S() as s:
            unscored = list(s.scalars(select(PassItem.paper_id).where(
                PassItem.pass_id == pass_id, PassItem.scored.is_(False)).order_by(PassItem.paper_id)))
        for i in range(0, len(unscored), BATCH):
            send(unscored[i:i + BATCH])
        for b in (held, held, [], [], []):
            send(b)
        wait_for(lambda: status() != PASS_SCORING, what="selection never ran")
        wait_for(lambda: r.llen(names.SCORE_QUEUE) == 0, what="score queue not drained")
        time.sleep(1.0)  # let the last in-flight (now no-op) batches finish
    finally:
        stack.stop()

    expected = config.ai_summary.max_papers_to_summarize
    with S() as s:
        p = s.get(Pass, pass_id)
        ranked = s.execute(select(PassItem.paper_id, PassItem.rank, PassItem.score, PassItem.summary_state)
                           .where(PassItem.pass_id == pass_id, PassItem.rank.is_not(None))
                           .order_by(PassItem.rank)).all()
        first_digest = list(s.scalars(select(PassItem.paper_id).where(
            PassItem.pass_id == first, PassItem.rank.is_not(None)).order_by(PassItem.rank)))
    engine.dispose()
    assert p.status == "summarizing" and count(PassItem.scored.is_(False)) == 0
    assert [x.rank for x in ranked] == list(range(1, config.max_papers + 1)) == list(range(1, p.selected + 1))
    assert [x.paper_id for x in ranked] == first_digest  # same input, same digest
    pending = [x.paper_id for x in ranked if x.summary_state == SUM_PENDING]
    assert pending == [x.paper_id for x in ranked[:expected]]
    msgs = summarize_messages(r)
    assert len(msgs) == r.llen(names.SUMMARIZE_QUEUE) == expected
    assert sorted(m["paper_id"] for m in msgs) == sorted(pending) and {m["pass_id"] for m in msgs} == {pass_id}
    logs = "".join(f.read_text(errors="replace") for f in stack.tmp.glob("worker-scorer-*.log"))
    assert logs.count(f"pass {pass_id}: selection:") == 1
    r.close()

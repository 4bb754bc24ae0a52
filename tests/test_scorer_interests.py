"""Interest similarity on real abstracts from the recorded 28 Nov 2024 feed
(tests/data/arxiv/rss/rss2_2024-11-28_all20archives_1504items.xml; arXiv ids in comments).
The embeddings path runs the real openai client against the local stand-in over HTTP."""
from __future__ import annotations

import re
from pathlib import Path

import openai
import pytest
from lxml import etree

from shared.arxiv import find_id as arxiv_id
from services.scorer.interests import (EmbeddingInterests, build_interests, fit_tfidf,
                                       interest_bonus, interest_texts)
from shared.config import parse_config
from shared.errors import ConfigError, PermanentError
from tests.standins.llm import LLMStandin

DAY = Path(__file__).parent / "data" / "arxiv" / "rss" / "rss2_2024-11-28_all20archives_1504items.xml"

ON_TOPIC = "2411.18050"  # RL for Mitigating Cascading Failures: ... (power grid blackouts)
QUANT = "2411.17691"  # Low-Bit Quantization Favors Undertrained LLMs: Scaling Laws for Quantized LLMs ...
OFF_TOPIC = [
    "2411.17700",  # Exploring the Impact of Generative AI on Cross-Border E-Commerce Brand Building ...
    "2411.17701",  # Equivalent of Non-Trivial Riemann Zeros Condition in Matrix Representation ...
    "2411.17912",  # Can LLMs plan paths in the real world?
    "2411.18090",  # CIM-Based Parallel Fully FFNN Surface Code High-Level Decoder ...
    "2411.17917",  # DECODE: Domain-aware Continual Domain Expansion for Motion Prediction
]


@pytest.fixture(scope="module")
def papers() -> dict[str, str]:
    """id -> "title. abstract" for every item of the recorded day."""
    out = {}
    for item in etree.parse(str(DAY)).iter("item"):
        m = re.match(r"arXiv:(\S+?)v\d+ .*?Abstract: (.*)", item.findtext("description"), re.S)
        out[m.group(1)] = f"{item.findtext('title')}. {m.group(2)}"
    return out


def ranked(model, papers, ids):
    sims = model.similarities([papers[i] for i in ids])
    assert all(type(s) is float and 0.0 <= s <= 1.0 for s in sims)
    return [i for _, i in sorted(zip(sims, ids), key=lambda p: -p[0])], dict(zip(ids, sims))


def test_tfidf_ranks_the_on_topic_abstract_first(papers):
    model = fit_tfidf(["reinforcement learning for power grid resilience and blackout mitigation",
                       "speculative decoding for LLM inference"])
    order, sims = ranked(model, papers, OFF_TOPIC + [ON_TOPIC])
    assert order[0] == ON_TOPIC
    assert sims[ON_TOPIC] > 0.1 and sims[ON_TOPIC] > 2 * max(sims[i] for i in OFF_TOPIC)
    assert sims["2411.17701"] == 0.0  # Riemann zeros share no word with either interest


def test_tfidf_with_an_arxiv_id_resolved_by_the_caller(papers):
    # Interest: 2406.19657 "LLMEasyQuant -- An Easy to Use Toolkit for LLM Quantization" (its
    # title + abstract come from resolve()); an unknown id is reported, not fatal.
    texts, unresolved = interest_texts(["arXiv:2406.19657v3", "9999.99999"], papers.get)
    assert unresolved == ["9999.99999"] and texts == [papers["2406.19657"]]
    order, sims = ranked(fit_tfidf(texts), papers, OFF_TOPIC + [QUANT])
    assert order[0] == QUANT


def test_a_paper_scores_the_same_whatever_its_batch(papers):
    model = fit_tfidf(["quantization of large language models"])
    alone = model.similarity(papers[QUANT])
    assert model.similarities([papers[i] for i in OFF_TOPIC] + [papers[QUANT]])[-1] == alone
    assert model.similarities([""]) == [0.0]


def test_bonus_and_config_rules(papers):
    assert interest_bonus(0.5, 5.0) == 2.5 and interest_bonus(1.2, 5.0) == 5.0
    assert interest_bonus(0.0999, 5.0) == 0.0 and interest_bonus(0.1, 5.0) == 0.5  # noise floor
    assert arxiv_id("hep-th/9901001v2") == "hep-th/9901001" and arxiv_id("sparse attention") is None
    assert build_interests(parse_config({}).interests) is None  # off by default
    on = parse_config({"interests": {"enabled": True, "items": ["2411.18050", "grid blackouts"]}})
    model = build_interests(on.interests, resolve=papers.get)
    assert model.similarity(papers[ON_TOPIC]) > model.similarity(papers["2411.17701"])
    with pytest.raises(ConfigError, match="arXiv ids not found: 2411.00001"):
        build_interests(parse_config({"interests": {"enabled": True, "items": ["2411.00001"]}}).interests)
    with pytest.raises(ConfigError, match="no usable words"):
        fit_tfidf(["the and of"])
    emb = parse_config({"interests": {"enabled": True, "items": ["x y"], "method": "embeddings"}})
    with pytest.raises(ConfigError, match="needs an OpenAI-compatible API key"):
        build_interests(emb.interests)


def test_embeddings_over_http_rank_and_batch(papers):
    with LLMStandin(api_key="k-embed") as llm:
        client = openai.OpenAI(base_url=llm.base_url, api_key="k-embed", max_retries=0)
        model = EmbeddingInterests(client, "text-embedding-3-small",
                                   [papers[ON_TOPIC].split(". ", 1)[1]], batch_size=2)
        order, sims = ranked(model, papers, OFF_TOPIC + [ON_TOPIC])
        sizes = [len(body["input"]) for _, path, body, status in llm.requests if path == "/v1/embeddings"]
        models = {body["model"] for _, path, body, _ in llm.requests if path == "/v1/embeddings"}
    assert order[0] == ON_TOPIC and sims[ON_TOPIC] > 0.5
    assert sizes == [1, 2, 2, 2] and models == {"text-embedding-3-small"}  # items once, docs batched


def test_embeddings_errors_are_one_line_without_secrets(papers):
    with LLMStandin(api_key="right-key") as llm:
        client = openai.OpenAI(base_url=llm.base_url, api_key="sk-wrong-secret", max_retries=0)
        model = EmbeddingInterests(client, "text-embedding-3-small", ["grid"])
        with pytest.raises(PermanentError) as err:
            model.similarities([papers[ON_TOPIC]])
    assert str(err.value) == "embeddings request failed: HTTP 401"

"""Benchmark the keyword matcher: papers/s for 30 and 300 keywords over 15,000 real papers.

The papers are the recorded 28 Nov 2024 announcement day (1504 items, all archives) repeated
ten times, each copy shifted (its title/abstract rotated by a few sentences) so no two copies of
a paper are identical. Run from the repository root:

    .venv/bin/python bench/bench_scorer.py [--papers 15000] [--repeat 3]

Target: >= 20,000 papers/s for the original 30 keywords (one process). Also measured: the
same with interests on (TF-IDF over three interest texts, weight 5), the scorer's hot path when
config.interests is enabled (services/scorer/handlers.py adds weight x similarity per paper).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from services.scorer.interests import fit_tfidf, interest_bonus
from services.scorer.matcher import compile_matcher
from shared.config import load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
FEED = ROOT / "tests/data/arxiv/rss/rss2_2024-11-28_all20archives_1504items.xml"
ORIGINAL = Path(__file__).resolve().parent.parent / "tests" / "data" / "original-config.json"
DC = "{http://purl.org/dc/elements/1.1/}"

# 270 more distinct, realistic ML / systems terms (single words, phrases, acronyms, punctuation).
EXTRA = """
transformer;large language model;language model;mixture of experts;KV cache;paged attention;
flash attention;sparse attention;linear attention;state space model;Mamba;RNN;LSTM;CNN;GNN;
graph neural network;diffusion model;score matching;flow matching;normalizing flow;VAE;GAN;
contrastive learning;self-supervised learning;semi-supervised learning;few-shot;zero-shot;
in-context learning;chain of thought;reasoning;retrieval-augmented generation;RAG;agent;
multi-agent;tool use;instruction tuning;fine-tuning;LoRA;QLoRA;adapter;prompt tuning;
prefix tuning;parameter-efficient;distillation;knowledge distillation;pruning;low-rank;
tensor parallelism;pipeline parallelism;data parallelism;ZeRO;FSDP;all-reduce;collective;
NCCL;RDMA;InfiniBand;NVLink;GPU;TPU;FPGA;ASIC;CUDA;Triton;compiler;MLIR;XLA;operator fusion;
memory bandwidth;roofline;latency;tail latency;batching;continuous batching;scheduling;
load balancing;autoscaling;serverless;microservice;Kubernetes;container;virtualization;
edge computing;federated learning;differential privacy;secure aggregation;homomorphic;
adversarial;robustness;jailbreak;red teaming;alignment;preference optimization;DPO;PPO;
reward model;reward hacking;policy gradient;Q-learning;actor-critic;offline RL;model-based RL;
imitation learning;behavior cloning;world model;planning;Monte Carlo tree search;MCTS;
bandit;exploration;curriculum learning;meta-learning;continual learning;catastrophic forgetting;
domain adaptation;transfer learning;out-of-distribution;uncertainty;calibration;conformal prediction;
Bayesian;Gaussian process;variational inference;MCMC;causal inference;causal discovery;
counterfactual;interpretability;explainability;mechanistic interpretability;probing;
attribution;saliency;hallucination;factuality;evaluation;benchmark;leaderboard;dataset;
data curation;synthetic data;data augmentation;tokenizer;tokenization;embedding;vector database;
nearest neighbor;approximate nearest neighbor;HNSW;hashing;recommendation;ranking;
search engine;information retrieval;question answering;Q&A;summarization;machine translation;
speech recognition;text-to-speech;ASR;vision-language model;VLM;multimodal;CLIP;ViT;
vision transformer;object detection;segmentation;image generation;video generation;
text-to-image;3D reconstruction;NeRF;Gaussian splatting;point cloud;SLAM;robotics;
manipulation;locomotion;autonomous driving;trajectory prediction;time series;forecasting;
anomaly detection;fraud detection;code generation;program synthesis;C++;Python;Rust;
compiler optimization;formal verification;theorem proving;Lean;SAT solver;SMT;
combinatorial optimization;integer programming;convex optimization;stochastic gradient descent;
SGD;Adam;learning rate;warmup;weight decay;normalization;layer normalization;batch normalization;
dropout;residual connection;positional encoding;rotary embedding;RoPE;long context;
context length;memory;cache;prefetching;storage;checkpointing;fault tolerance;straggler;
consensus;Raft;Paxos;Byzantine;blockchain;smart contract;database;query optimization;
transaction;stream processing;dataflow;MapReduce;Spark;HPC;supercomputer;MPI;OpenMP;
heterogeneous;energy efficiency;power consumption;carbon;green AI;sustainability;
BF16;FP16;INT8;INT4;mixed precision;post-training quantization;quantization-aware training;
weight-only quantization;activation sparsity;structured sparsity;K-means;clustering;
dimensionality reduction;PCA;t-SNE;manifold;kernel method;support vector machine;
random forest;gradient boosting;XGBoost;decision tree;logistic regression;linear regression;
neural architecture search;AutoML;hyperparameter optimization;scaling law;emergent ability;
test-time compute;speculative decoding;draft model;beam search;sampling;temperature;
top-k;nucleus sampling;watermarking;copyright;privacy;fairness;bias;safety;toxicity
"""


def load_papers(n: int) -> list[tuple[str, str, list[str], list[str]]]:
    """`n` papers (title, abstract, authors, categories) from the recorded day, shifted copies."""
    base = []
    for item in etree.parse(str(FEED)).iter("item"):
        desc = item.findtext("description") or ""
        abstract = desc.split("Abstract:", 1)[-1].strip()
        authors = [a.strip() for a in (item.findtext(DC + "creator") or "").split(",") if a.strip()]
        base.append((item.findtext("title") or "", abstract, authors,
                     [c.text for c in item.iter("category")]))
    papers = []
    for copy in range(n // len(base) + 1):
        for title, abstract, authors, cats in base:
            sentences = abstract.split(". ")
            k = copy % max(len(sentences), 1)
            papers.append((title, ". ".join(sentences[k:] + sentences[:k]), authors, cats))
    return papers[:n]


def extra_terms() -> list[str]:
    terms = [t.strip() for t in EXTRA.replace("\n", "").split(";") if t.strip()]
    assert len(terms) == len(set(t.lower() for t in terms)), "duplicate extra terms"
    return terms


def run(name: str, matcher, papers, repeat: int) -> None:
    best = float("inf")
    hits = 0
    for _ in range(repeat):
        start = time.perf_counter()
        hits = sum(1 for p in papers if matcher.score(*p).matched)
        best = min(best, time.perf_counter() - start)
    print(f"{name:<34} {len(papers) / best:>10,.0f} papers/s   ({len(papers)} papers, "
          f"{best * 1000:.0f} ms, {hits} with a match)")


INTERESTS = ["speculative decoding to speed up large language model inference on GPUs",
             "communication-efficient distributed training of mixture of experts models",
             "low-bit quantization of LLM weights and KV cache"]


def run_with_interests(name: str, matcher, papers, repeat: int) -> None:
    """Keyword score plus interest similarity, in batches of 500 as score_batch does."""
    model = fit_tfidf(INTERESTS)
    best, hits = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        hits = 0
        for i in range(0, len(papers), 500):
            batch = papers[i:i + 500]
            sims = model.similarities([f"{t}\n{a}" for t, a, _, _ in batch])
            for p, sim in zip(batch, sims):
                r = matcher.score(*p)
                hits += bool(r.matched or interest_bonus(sim, 5.0))
        best = min(best, time.perf_counter() - start)
    print(f"{name:<34} {len(papers) / best:>10,.0f} papers/s   ({len(papers)} papers, "
          f"{best * 1000:.0f} ms, {hits} with a match or interest)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=15000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = load_config(ORIGINAL)
    papers = load_papers(args.papers)
    keywords = config.keyword_terms()
    extra = extra_terms()
    big = parse_config({"keywords": keywords + extra[: 300 - len(keywords)],
                        "exclude_keywords": list(config.exclude_keywords)})
    print(f"{len(papers)} papers; keyword sets: {len(keywords)} and {len(big.keywords)}")
    start = time.perf_counter()
    small_m = compile_matcher(config)
    big_m = compile_matcher(big)
    print(f"compile both matchers: {(time.perf_counter() - start) * 1000:.1f} ms")
    run(f"{len(keywords)} keywords (original config)", small_m, papers, args.repeat)
    run(f"{len(big.keywords)} keywords", big_m, papers, args.repeat)
    run_with_interests(f"{len(keywords)} keywords + interests", small_m, papers, args.repeat)
    run_with_interests(f"{len(big.keywords)} keywords + interests", big_m, papers, args.repeat)


if __name__ == "__main__":
    main()

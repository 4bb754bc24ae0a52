"""Interest similarity: how close a paper is to what the user reads (optional, off by default).

config.interests.items are short texts ("sparse attention kernels for long-context inference")
or arXiv ids ("2411.18050", "arXiv:1706.03762v7"); the caller turns ids into title + abstract
with a `resolve(id) -> text | None` callable (the scorer reads them from its papers table).

Combination (documented contract for the scorer):

    score = keyword score (matcher.py) + interests.weight x max cosine similarity   (0..1)

`interest_bonus(similarity, weight)` is that second term. A similarity below MIN_SIMILARITY
(0.1) counts as 0: on a real day nearly every abstract shares a word or two with any interest
text (TF-IDF median about 0.05), and that noise must not make every paper "matched". Two methods:

* "tfidf" (default): scikit-learn TfidfVectorizer (sublinear tf, English stop words) fitted on the
  interest texts. A paper's vector uses the same analyzer and IDF; words no interest text has get
  the largest IDF, so they still count in the paper's norm: a long off-topic abstract that shares
  one word with an interest scores low, and a paper's score never depends on the other papers
  of its batch.
* "embeddings": `client.embeddings.create` vectors (an OpenAI-compatible API), papers sent in
  batches; openai is imported only when a request fails (for its error types).
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Callable, Iterable, Sequence

from shared.arxiv import find_id
from shared.errors import ConfigError, PermanentError, TransientError, retry_after_seconds

def interest_texts(items: Iterable[str], resolve: Callable[[str], str | None] | None = None
                   ) -> tuple[list[str], list[str]]:
    """(texts, unresolved ids): plain items as they are, arXiv ids through `resolve`."""
    texts, unresolved = [], []
    for item in items:
        pid = find_id(item)
        if pid is None:
            if item.strip():
                texts.append(item.strip())
            continue
        text = resolve(pid) if resolve else None
        if text and text.strip():
            texts.append(text)
        else:
            unresolved.append(pid)
    return texts, unresolved


MIN_SIMILARITY = 0.1


def interest_bonus(similarity: float, weight: float) -> float:
    """The score points for a similarity in 0..1: weight x similarity, rounded like scores;
    0 below MIN_SIMILARITY."""
    if similarity < MIN_SIMILARITY:
        return 0.0
    return round(weight * min(similarity, 1.0), 4)


class InterestModel:
    """Similarity of papers to the user's interests: `similarities(docs)` -> floats in 0..1."""

    def similarities(self, docs: Sequence[str]) -> list[float]:
        raise NotImplementedError

    def similarity(self, doc: str) -> float:
        return self.similarities([doc])[0]


class TfidfInterests(InterestModel):
    """TF-IDF cosine similarity, maximum over the interest texts (see the module docstring)."""

    def __init__(self, texts: Sequence[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(sublinear_tf=True, stop_words="english")
        try:
            matrix = self.vectorizer.fit_transform(list(texts))
        except ValueError:  # empty vocabulary: only stop words, numbers or nothing at all
            raise ConfigError("interests.items: no usable words in the interest texts") from None
        vocab = self.vectorizer.get_feature_names_out()
        self._idf = {t: float(v) for t, v in zip(vocab, self.vectorizer.idf_)}
        # smooth_idf: ln((1 + n) / (1 + df)) + 1 with df = 0 for a word no interest text has.
        self._idf_unknown = math.log(1 + matrix.shape[0]) + 1
        self._idf2 = {t: v * v for t, v in self._idf.items()}
        self._analyze = self.vectorizer.build_analyzer()
        self._items = []
        for row in matrix:  # rows are already L2-normalised
            coo = row.tocoo()
            self._items.append({vocab[j]: float(v) for j, v in zip(coo.col, coo.data)})

    def _vector(self, doc: str) -> dict[str, float]:
        counts = Counter(self._analyze(doc or ""))
        vec = {t: (1 + math.log(c)) * self._idf.get(t, self._idf_unknown) for t, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in vec.values()))
        return {t: w / norm for t, w in vec.items()} if norm else {}

    def similarities(self, docs: Sequence[str]) -> list[float]:
        """Max cosine similarity of each doc to the interest texts, rounded, in 0..1."""
        return self.similarities_of_counts([Counter(self._analyze(doc or "")) for doc in docs])

    def similarities_of_counts(self, docs_counts: Sequence[Counter]) -> list[float]:
        """`similarities` from each doc's word counts (`analyze` once per paper, then reused by
        every profile). Same value as the dot product with `_vector(doc)`, computed without
        building it (the scorer's hot path): the norm runs over the doc's words, the dot only
        over interest words."""
        out = []
        idf2, unknown2, log1 = self._idf2, self._idf_unknown ** 2, _LOG1
        for counts in docs_counts:
            # Squared tf-idf weights; words seen once (most) need no log.
            sq = sum((idf2.get(t, unknown2) if c == 1 else idf2.get(t, unknown2) * (1 + math.log(c)) ** 2)
                     for t, c in counts.items())
            if not sq:
                out.append(0.0)
                continue
            best = max(sum(w * log1(counts[t]) * self._idf[t] for t, w in item.items() if t in counts)
                       for item in self._items)
            out.append(round(float(min(max(best / math.sqrt(sq), 0.0), 1.0)), 4))
        return out


def _LOG1(count: int) -> float:
    return 1.0 if count == 1 else 1 + math.log(count)


def fit_tfidf(texts: Sequence[str]) -> TfidfInterests:
    """A TF-IDF interest model; raises ConfigError if the texts hold no usable words."""
    return TfidfInterests(texts)


class EmbeddingInterests(InterestModel):
    """Cosine similarity of embedding vectors from an OpenAI-compatible `client`.

    The interest texts are embedded once, on first use. Failures raise TransientError
    (connection, timeout, 429, 5xx) or PermanentError (other HTTP errors); messages never
    carry the server's answer (some echo the API key).
    """

    def __init__(self, client, model: str, texts: Sequence[str] = (), batch_size: int = 64):
        self.client, self.model, self.batch_size = client, model, batch_size
        self.texts = list(texts)
        self._items = None

    def fit(self, texts: Sequence[str]) -> "EmbeddingInterests":
        self.texts, self._items = list(texts), None
        return self

    def _embed(self, texts: Sequence[str]):
        import numpy as np

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            # The API rejects empty strings; an empty abstract is "nothing to compare".
            batch = [t if t and t.strip() else "(empty)" for t in texts[start:start + self.batch_size]]
            try:
                resp = self.client.embeddings.create(model=self.model, input=batch)
            except Exception as exc:
                raise _embedding_error(exc) from None
            rows.extend(d.embedding for d in sorted(resp.data, key=lambda d: d.index))
        matrix = np.asarray(rows, dtype=float).reshape(len(rows), -1)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1.0, norms)

    def similarities(self, docs: Sequence[str]) -> list[float]:
        """Max cosine similarity of each doc to the interest texts, rounded, in 0..1."""
        if not docs:
            return []
        self._fit()
        return self.similarities_of_vectors(self._embed(list(docs)))

    def _fit(self) -> None:
        if not self.texts:
            raise ConfigError("interests.items: no interest texts to compare with")
        if self._items is None:
            self._items = self._embed(self.texts)

    def similarities_of_vectors(self, doc_matrix) -> list[float]:
        """`similarities` from the docs' normalised embeddings (`embed` once per paper)."""
        self._fit()
        sims = doc_matrix @ self._items.T
        return [round(float(min(max(s, 0.0), 1.0)), 4) for s in sims.max(axis=1)]

    def embed(self, docs: Sequence[str]):
        return self._embed(list(docs))


def _embedding_error(exc: Exception) -> Exception:
    import openai

    if isinstance(exc, (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)):
        response = getattr(exc, "response", None)
        retry = retry_after_seconds(response.headers) if response is not None else None
        return TransientError(f"embeddings request failed: {type(exc).__name__}", retry_after=retry)
    if isinstance(exc, openai.APIStatusError):
        return PermanentError(f"embeddings request failed: HTTP {exc.status_code}")
    return PermanentError(f"embeddings request failed: {type(exc).__name__}")


def analyzer():
    """The word analyzer every TF-IDF interest model uses (one per process)."""
    global _ANALYZER
    if _ANALYZER is None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        _ANALYZER = TfidfVectorizer(sublinear_tf=True, stop_words="english").build_analyzer()
    return _ANALYZER


_ANALYZER = None


def build_interests(cfg, resolve: Callable[[str], str | None] | None = None,
                    client=None) -> InterestModel | None:
    """The model an InterestsConfig (a profile's `interests`) asks for, or None when it is off.

    Raises ConfigError when it is on but no item is usable, or the embeddings method has no client.
    """
    if not cfg.enabled:
        return None
    texts, unresolved = interest_texts(cfg.items, resolve)
    if not texts:
        missing = f" (arXiv ids not found: {', '.join(unresolved)})" if unresolved else ""
        raise ConfigError(f"interests.items: nothing to compare papers with{missing}")
    if cfg.method == "embeddings":
        if client is None:
            raise ConfigError("interests.method 'embeddings' needs an OpenAI-compatible API key")
        return EmbeddingInterests(client, cfg.embedding_model, texts)
    return fit_tfidf(texts)

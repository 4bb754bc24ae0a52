"""A reader's ratings as a ranker: a logistic regression over hashed TF-IDF-style features.

Features of a paper (`featurize`): the words of its title and abstract, as the interests'
analyzer gives them (interests.analyzer: lower case, English stop words dropped), each weighted
1 + ln(count) (sublinear term frequency); plus one token per category ("cat:cs.LG", the primary
weighted CATEGORY_WEIGHT, the others half that) and per archive. They are hashed into
N_FEATURES columns (sklearn FeatureHasher: no vocabulary to fit, so the day's papers are
featurized once per pass and shared by every profile, and a model trained on one day applies
to the next) and each row is L2-normalised. No IDF: it would depend on the day's papers; the
regression learns which words matter.

Model (`train`): LogisticRegression, classes balanced (a reader who likes 3 papers and dislikes
17 still gets a usable model), C = C_REG. Its probability p that the reader likes a paper
becomes score points (`points`):

    points = feedback.weight x (2p - 1)          in [-weight, +weight]

so with the default weight 4 a confident "like" is worth about three keyword matches (a keyword
counts 1, or 1.5 in the title): enough to lift a paper that matches no keyword above a typical
min_score, and to sink a paper that matches several. Explanations (`closest`): the rated papers
nearest to a paper (cosine of the same features).

Pure computation: no database, no configuration (services/scorer/profile_feedback.py feeds it;
bench/bench_ranking.py measures it). numpy, scipy and scikit-learn are imported on first use.
"""
from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

N_FEATURES = 2 ** 20
CATEGORY_WEIGHT = 3.0
C_REG = 20.0
MIN_SIMILARITY = 0.05  # a rated paper closer than this explains nothing


def fingerprint(ratings: Sequence[tuple[str, str]]) -> str:
    """A stable digest of a rating set [(paper id, "up"|"down")]: the model cache's key."""
    lines = sorted(f"{pid}\0{rating}" for pid, rating in ratings)
    return hashlib.blake2b("\n".join(lines).encode(), digest_size=16).hexdigest()


def word_counts(texts: Sequence[str]) -> list[Counter]:
    from .interests import analyzer

    analyze = analyzer()
    return [Counter(analyze(t or "")) for t in texts]


def featurize(counts: Sequence[Counter], categories: Sequence[Sequence[str]]):
    """A CSR matrix (one L2-normalised row per paper) from word counts and category lists."""
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.preprocessing import normalize

    rows = []
    for words, cats in zip(counts, categories):
        row = {w: (1.0 if c == 1 else 1.0 + math.log(c)) for w, c in words.items()}
        for n, cat in enumerate(cats or ()):
            weight = CATEGORY_WEIGHT if n == 0 else CATEGORY_WEIGHT / 2
            row["cat:" + cat] = max(row.get("cat:" + cat, 0.0), weight)
            archive = "arc:" + cat.split(".", 1)[0]
            row[archive] = max(row.get(archive, 0.0), weight / 2)
        rows.append(row)
    hasher = FeatureHasher(n_features=N_FEATURES, input_type="dict", alternate_sign=False)
    return normalize(hasher.transform(rows).tocsr())


@dataclass
class FeedbackModel:
    """A trained ranker and the rated papers that explain it."""

    fingerprint: str
    coef: object           # scipy CSC column (N_FEATURES x 1): only the features seen in training
    intercept: float
    rated: object          # CSR rows of the rated papers (for explanations)
    rated_ids: list[str]
    rated_titles: list[str]
    liked: list[bool]      # per rated paper: "up"

    def probabilities(self, features) -> list[float]:
        """p(like) for each row of `features` (a CSR matrix from `featurize`)."""
        import numpy as np

        if features.shape[0] == 0:
            return []
        z = np.asarray((features @ self.coef).todense()).ravel() + self.intercept
        return list(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))))

    def explain(self, features, liked: Sequence[bool], ids: Sequence[str], k: int = 3) -> list[list[tuple[str, str]]]:
        """For each row of `features`: (id, title) of the k rated papers of the kind asked
        (`liked[row]`) most similar to it (cosine, at least MIN_SIMILARITY), itself excluded."""
        import numpy as np

        sims = np.asarray((features @ self.rated.T).todense())
        kinds = np.asarray(self.liked)
        out = []
        for row, want in enumerate(liked):
            cand = np.where((kinds == bool(want)) & (sims[row] >= MIN_SIMILARITY))[0]
            cand = cand[np.argsort(-sims[row][cand], kind="stable")]
            near = [(self.rated_ids[j], self.rated_titles[j]) for j in cand if self.rated_ids[j] != ids[row]]
            out.append(near[:k])
        return out


def train(features, liked: Sequence[bool], ids: Sequence[str], titles: Sequence[str],
          print_: str = "") -> FeedbackModel:
    """Fit the regression on the rated papers' feature rows (both kinds must be present)."""
    import numpy as np
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    y = np.asarray([1 if v else 0 for v in liked])
    # Fit on the columns the rated papers use (a few thousand of the 2**20): the other weights
    # are 0 anyway, and the solver's cost follows the width of what it is given.
    cols = np.unique(features.indices)
    clf = LogisticRegression(C=C_REG, class_weight="balanced", solver="liblinear")
    clf.fit(features[:, cols], y)
    coef = sparse.csc_matrix((clf.coef_.ravel(), (cols, np.zeros(len(cols), dtype=int))), shape=(N_FEATURES, 1))
    coef.eliminate_zeros()
    return FeedbackModel(print_, coef, float(clf.intercept_[0]), features, list(ids), list(titles),
                         [bool(v) for v in liked])


def points(p: float, weight: float) -> float:
    """Score points for p(like): weight x (2p - 1), rounded like scores."""
    return round(weight * (2.0 * p - 1.0), 4)

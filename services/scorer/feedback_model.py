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
    """A trained ranker and the rated papers that explain it, in the model's own small column
    space: `cols`, the hashed features the rated papers use (sorted), usually a few thousand of
    the 2**20; no other feature can carry weight. A model thus costs kilobytes, not megabytes."""

    fingerprint: str
    cols: object           # numpy int array: the feature columns the model knows, sorted
    weights: object        # numpy float array, one per column of `cols`
    intercept: float
    rated: object          # CSR (rated papers x len(cols)): their rows, for explanations
    rated_ids: list[str]
    rated_titles: list[str]
    liked: list[bool]      # per rated paper: "up"

    def project(self, features):
        """`features` (CSR rows from `featurize`) restricted to the model's columns: one
        vectorised pass over their non-zeros (the day's matrix is shared; nothing is copied
        per feature)."""
        import numpy as np
        from scipy import sparse

        n = features.shape[0]
        pos = np.searchsorted(self.cols, features.indices)
        pos[pos == len(self.cols)] = 0
        hit = self.cols[pos] == features.indices if len(self.cols) else np.zeros(len(pos), dtype=bool)
        rows = np.repeat(np.arange(n), np.diff(features.indptr))
        return sparse.csr_matrix((features.data[hit], (rows[hit], pos[hit])), shape=(n, len(self.cols)))

    def probabilities(self, projected) -> list[float]:
        """p(like) for each row of a `project`ed matrix."""
        import numpy as np

        if projected.shape[0] == 0:
            return []
        z = projected @ self.weights + self.intercept
        return [float(v) for v in 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))]

    def explain(self, projected, liked: Sequence[bool], ids: Sequence[str], k: int = 3) -> list[list[tuple[str, str]]]:
        """For each row of a `project`ed matrix: (id, title) of the k rated papers of the kind
        asked (`liked[row]`) most similar to it (cosine, at least MIN_SIMILARITY), itself
        excluded."""
        import numpy as np

        sims = (projected @ self.rated.T).toarray()
        want = np.asarray(liked, dtype=bool)[:, None]
        sims[np.asarray(self.liked, dtype=bool)[None, :] != want] = -1.0  # the other kind
        index = {pid: j for j, pid in enumerate(self.rated_ids)}
        for row, pid in enumerate(ids):  # a rated paper does not explain itself
            if pid in index:
                sims[row, index[pid]] = -1.0
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return [[(self.rated_ids[j], self.rated_titles[j]) for j in order[row] if sims[row, j] >= MIN_SIMILARITY]
                for row in range(len(ids))]


def train(features, liked: Sequence[bool], ids: Sequence[str], titles: Sequence[str],
          fingerprint_: str = "") -> FeedbackModel:
    """Fit the regression on the rated papers' feature rows (both kinds must be present)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    y = np.asarray([1 if v else 0 for v in liked])
    # Fit on the columns the rated papers use: the others would keep weight 0 anyway, and the
    # solver's cost follows the width of what it is given.
    cols = np.unique(features.indices)
    small = features[:, cols].tocsr()
    clf = LogisticRegression(C=C_REG, class_weight="balanced", solver="liblinear")
    clf.fit(small, y)
    return FeedbackModel(fingerprint_, cols, clf.coef_.ravel().copy(), float(clf.intercept_[0]), small,
                         list(ids), list(titles), [bool(v) for v in liked])


def points(p: float, weight: float) -> float:
    """Score points for p(like): weight x (2p - 1), rounded like scores."""
    return round(weight * (2.0 * p - 1.0), 4)

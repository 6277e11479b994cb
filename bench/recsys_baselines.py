"""Next-basket baselines the recommendation benchmark compares against: TIFU-KNN and `implicit`'s models.

Everything here reads the engine's `Transactions` (train) and answers with top-k item indices in train's index
space (-1 = empty slot), one row per evaluated customer, so `score_topk` scores every method the same way.

TIFU-KNN (Hu, He, Gao, Zhang, "Modeling Personalized Item Frequency Information for Next-basket Recommendation",
SIGIR 2020), as in the authors' released code (HaojiHu/TIFUKNN, `TIFUKNN.py`):

* a customer with baskets b_1..b_n (binary item vectors, oldest first) gives each basket the within-group decay
  r_b^(n-i) (counted from the customer's last basket, as in the authors' code);
* the n baskets are cut into m consecutive groups (the authors' `group_size` is this number of groups): when
  n >= m, the first m - (n mod m) groups hold floor(n/m) baskets and the last (n mod m) hold one more; when n < m,
  each basket is a group of its own. A group vector is the mean of its decayed baskets;
* the customer's vector is u = (1/G) Σ_g r_g^(m-1-g) · group_g over its G groups (G = min(n, m));
* the k nearest other customers by Euclidean distance between these vectors (brute force, as `NearestNeighbors`).
  The authors keep their test customers out of the neighbour pool; here every customer is evaluated on their own
  last basket, so each one's neighbours are all the other customers, built from train only;
* the prediction is α·u + (1-α)·mean of the k neighbours' vectors, and the top-k items by that score.

`implicit` (Frederickson): `CosineRecommender` and `BM25Recommender` (item-item kNN) and `AlternatingLeastSquares`
(Hu, Koren, Volinsky 2008), fitted on the customer × item matrix of basket counts, and asked with
`filter_already_liked_items=False`: next-basket truth is mostly repeat purchases, which that filter would remove.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from recommend_api.engine.data import Transactions

TopK = npt.NDArray[np.int64]

# ------------------------------------------------------------------------------------------------ shared


def customer_item_counts(tx: Transactions) -> sp.csr_matrix:
    """Customer × item CSR matrix (float32) of how many baskets of each customer hold each item."""
    return sp.csr_matrix(
        (np.ones(tx.n_lines, np.float32), (tx.basket_customer[tx.line_basket], tx.line_item)),
        shape=(tx.n_customers, tx.n_items),
    )


def _first_k(rows: npt.NDArray[Any], cols: npt.NDArray[Any], key: npt.NDArray[Any], n_rows: int, k: int) -> TopK:
    """Per row, the columns of the ``k`` smallest ``key`` values (ties: lower column), -1 padded."""
    order = np.lexsort((cols, key, rows))
    rows, cols = rows[order], cols[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = rank < k
    top = np.full((n_rows, k), -1, dtype=np.int64)
    top[rows[keep], rank[keep]] = cols[keep]
    return top


def topk_of_scores(scores: npt.NDArray[np.floating], k: int) -> TopK:
    """Indices of the k highest scores of each row, best first; slots whose score is <= 0 are -1.

    Ties go to the lower index, the same on every machine (``argpartition`` alone breaks them by the CPU's sorting
    code path, so a tuned setting could change between machines).
    """
    n_rows, n_cols = scores.shape
    k_eff = min(k, n_cols)
    kth = -np.partition(-scores, k_eff - 1, axis=1)[:, k_eff - 1]
    rows, cols = np.nonzero((scores >= kth[:, None]) & (scores > 0))
    return _first_k(rows, cols, -scores[rows, cols], n_rows, k)


# --------------------------------------------------------------------------------------------- TIFU-KNN


@dataclass(frozen=True)
class TifuParams:
    """TIFU-KNN hyperparameters: neighbours k, within-group decay r_b, group decay r_g, groups m, blend α."""

    k: int = 900
    r_b: float = 0.9
    r_g: float = 0.7
    m: int = 3
    alpha: float = 0.9

    def label(self) -> str:
        return f"k={self.k}, r_b={self.r_b}, r_g={self.r_g}, m={self.m}, α={self.alpha}"


#: The authors' Instacart setting (paper, Table 3; the authors' run scripts): the starting point of tuning.
TIFU_PAPER_INSTACART = TifuParams(k=900, r_b=0.9, r_g=0.7, m=3, alpha=0.9)


def tifu_user_vectors(tx: Transactions, r_b: float, r_g: float, m: int) -> sp.csr_matrix:
    """Each customer's time-decayed, grouped item-frequency vector (customer × item CSR, float64)."""
    offsets = tx.customer_basket_offsets()
    counts = np.diff(offsets)
    cust = tx.basket_customer.astype(np.int64)
    n = counts[cust]  # baskets of the basket's customer
    pos = np.arange(tx.n_baskets, dtype=np.int64) - offsets[cust]  # 0 = oldest
    within = np.power(r_b, (n - 1 - pos).astype(np.float64))

    base = n // m
    extra = n % m
    small_groups = m - extra
    boundary = small_groups * base
    safe_base = np.maximum(base, 1)
    in_small = pos < boundary
    group = np.where(in_small, pos // safe_base, small_groups + (pos - boundary) // (base + 1))
    group_size = np.where(in_small, base, base + 1).astype(np.float64)
    few = n < m  # fewer baskets than groups: one basket per group
    group = np.where(few, pos, group)
    group_size = np.where(few, 1.0, group_size)
    real_groups = np.where(few, n, m).astype(np.float64)
    weight = within / group_size * np.power(r_g, (m - 1 - group).astype(np.float64)) / real_groups

    return sp.csr_matrix(
        (weight[tx.line_basket], (cust[tx.line_basket], tx.line_item)), shape=(tx.n_customers, tx.n_items)
    )


def nearest_neighbours(vectors: sp.csr_matrix, queries: npt.NDArray[np.integer], k: int, chunk: int = 2048) -> Any:
    """The k nearest other customers (with at least one basket) of each query customer, by Euclidean distance
    (ties: lower customer index)."""
    sq = np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel()
    candidates = np.flatnonzero(vectors.getnnz(axis=1) > 0)
    cand_vectors = vectors[candidates].T.tocsc()
    k = min(k, len(candidates) - 1)
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        q = np.asarray(queries[start : start + chunk], dtype=np.int64)
        dots = (vectors[q] @ cand_vectors).toarray()
        dist = sq[q][:, None] + sq[candidates][None, :] - 2.0 * dots
        dist[candidates[None, :] == q[:, None]] = np.inf  # not oneself
        kth = np.partition(dist, k - 1, axis=1)[:, k - 1]
        rows, cols = np.nonzero(dist <= kth[:, None])  # ties at the k-th distance: lower candidate index first
        out[start : start + len(q)] = candidates[_first_k(rows, cols, dist[rows, cols], len(q), k)]
    return out


class TifuKnn:
    """TIFU-KNN fitted on train; `topk` ranks items for the given customers (see the module docstring)."""

    def __init__(self, params: TifuParams) -> None:
        self.params = params
        self.vectors: sp.csr_matrix | None = None

    def fit(self, train: Transactions) -> TifuKnn:
        p = self.params
        self.vectors = tifu_user_vectors(train, p.r_b, p.r_g, p.m)
        return self

    def topk(self, customers: npt.NDArray[np.integer], k: int = 10, chunk: int = 2048) -> TopK:
        if self.vectors is None:
            raise RuntimeError("fit first")
        p = self.params
        neighbours = nearest_neighbours(self.vectors, customers, p.k, chunk)
        n_nb = neighbours.shape[1]
        out = np.empty((len(customers), k), dtype=np.int64)
        for start in range(0, len(customers), chunk):
            q = np.asarray(customers[start : start + chunk], dtype=np.int64)
            nb = neighbours[start : start + len(q)]
            pick = sp.csr_matrix(
                (np.full(nb.size, 1.0 / n_nb), nb.ravel(), np.arange(0, nb.size + 1, n_nb)),
                shape=(len(q), self.vectors.shape[0]),
            )
            scores = p.alpha * self.vectors[q].toarray() + (1.0 - p.alpha) * (pick @ self.vectors).toarray()
            out[start : start + len(q)] = topk_of_scores(scores, k)
        return out


# --------------------------------------------------------------------------------------------- implicit


def weighted(user_items: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    """The input matrix an implicit model is fitted on: basket `counts`, `binary`, or `bm25` (implicit's
    `bm25_weight` over items with K1=100, B=0.8, as in implicit's own last.fm example for ALS)."""
    if weighting == "counts":
        return user_items
    if weighting == "binary":
        out = user_items.copy()
        out.data[:] = 1.0
        return out
    if weighting == "bm25":
        from implicit.nearest_neighbours import bm25_weight

        return bm25_weight(user_items.T.tocsr(), K1=100, B=0.8).T.tocsr().astype(np.float32)
    raise ValueError(f"unknown weighting {weighting!r}")


@dataclass(frozen=True)
class ImplicitSpec:
    """One `implicit` model: its name in the report, how to make it, where tuning starts and what it tries.

    Hyperparameters are the model's own, plus `weighting` (see `weighted`) for its input matrix.
    """

    name: str
    make: Callable[..., Any]
    start: Mapping[str, Any]
    grid: Mapping[str, Sequence[Any]]
    quick_grid: Mapping[str, Sequence[Any]]

    def fit(self, params: Mapping[str, Any], user_items: sp.csr_matrix) -> Any:
        """A model fitted on `user_items` (customer × item basket counts) weighted as `params` says."""
        own = dict(params)
        matrix = weighted(user_items, own.pop("weighting", "counts"))
        model = self.make(**own)
        model.fit(matrix, show_progress=False)
        return model


def implicit_specs(num_threads: int, seed: int = 7) -> list[ImplicitSpec]:
    """Cosine and BM25 item-item kNN and ALS, starting from their defaults on basket counts, with grids around."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    def cosine(**kw: Any) -> Any:
        return CosineRecommender(num_threads=num_threads, **kw)

    def bm25(**kw: Any) -> Any:
        return BM25Recommender(num_threads=num_threads, **kw)

    def als(**kw: Any) -> Any:
        return AlternatingLeastSquares(num_threads=num_threads, random_state=seed, **kw)

    neighbours = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
    return [
        ImplicitSpec(
            "implicit CosineRecommender (item-item)",
            cosine,
            {"K": 20, "weighting": "counts"},
            {"K": neighbours, "weighting": ["counts", "binary"]},
            {"K": [20, 200, 1000], "weighting": ["counts", "binary"]},
        ),
        ImplicitSpec(
            "implicit BM25Recommender (item-item)",
            bm25,
            {"K": 20, "K1": 1.2, "B": 0.75, "weighting": "counts"},
            {
                "K": neighbours,
                "K1": [0.1, 0.3, 0.6, 1.2, 2.0, 5.0],
                "B": [0.0, 0.25, 0.5, 0.75, 1.0],
                "weighting": ["counts", "binary"],
            },
            {"K": [20, 200, 1000], "K1": [0.3, 0.6, 1.2], "B": [0.5, 0.75], "weighting": ["counts"]},
        ),
        ImplicitSpec(
            "implicit AlternatingLeastSquares",
            als,
            {"factors": 100, "regularization": 0.01, "alpha": 1.0, "iterations": 15, "weighting": "counts"},
            {
                "factors": [16, 32, 64, 100, 200, 400],
                "regularization": [0.001, 0.01, 0.1, 1.0, 10.0, 30.0, 100.0],
                "alpha": [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0],
                "iterations": [5, 10, 15, 30],
                "weighting": ["counts", "binary", "bm25"],
            },
            {
                "factors": [32, 100, 200],
                "regularization": [0.01, 1.0, 10.0],
                "alpha": [1.0, 10.0],
                "iterations": [15],
                "weighting": ["counts", "bm25"],
            },
        ),
    ]


def implicit_topk(model: Any, user_items: sp.csr_matrix, customers: npt.NDArray[np.integer], k: int = 10) -> TopK:
    """Top-k of a fitted `implicit` model for `customers` (rows of `user_items`), already-bought items kept."""
    customers = np.asarray(customers, dtype=np.int32)
    ids, scores = model.recommend(customers, user_items[customers], N=k, filter_already_liked_items=False)
    ids = np.asarray(ids, dtype=np.int64)
    scores = np.asarray(scores)
    ids[~np.isfinite(scores) | (ids < 0)] = -1
    if ids.shape[1] < k:
        ids = np.hstack([ids, np.full((len(customers), k - ids.shape[1]), -1, dtype=np.int64)])
    return ids


# ----------------------------------------------------------------------------------------------- tuning


@dataclass
class Trial:
    """One evaluated hyperparameter setting on the validation split."""

    params: dict[str, Any]
    recall: float
    ndcg: float
    seconds: float


@dataclass
class Tuned:
    """The outcome of tuning one method: the chosen setting, the starting one and every trial."""

    name: str
    start: dict[str, Any]
    best: dict[str, Any]
    trials: list[Trial]

    @property
    def best_trial(self) -> Trial:
        return max(self.trials, key=lambda t: (t.recall, t.ndcg))

    @property
    def start_trial(self) -> Trial | None:
        return next((t for t in self.trials if t.params == self.start), None)


def coordinate_search(
    name: str,
    start: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]],
    evaluate: Callable[[dict[str, Any]], tuple[float, float]],
    rounds: int = 2,
) -> Tuned:
    """Coordinate ascent on validation recall@k (NDCG breaks ties): sweep one hyperparameter at a time over its
    candidates with the others fixed at the best so far, for `rounds` passes or until nothing improves.

    Settings are memoised, so the starting point and revisits cost nothing.
    """
    seen: dict[tuple[tuple[str, Any], ...], Trial] = {}

    def run(params: dict[str, Any]) -> Trial:
        key = tuple(sorted(params.items()))
        if key not in seen:
            started = time.perf_counter()
            recall, ndcg = evaluate(params)
            seen[key] = Trial(dict(params), recall, ndcg, time.perf_counter() - started)
        return seen[key]

    best = dict(start)
    best_trial = run(best)
    for _ in range(rounds):
        improved = False
        for param, values in grid.items():
            for value in values:
                trial = run({**best, param: value})
                if (trial.recall, trial.ndcg) > (best_trial.recall, best_trial.ndcg):
                    best, best_trial, improved = dict(trial.params), trial, True
        if not improved:
            break
    return Tuned(name, dict(start), best, list(seen.values()))


def tifu_grid(n_customers: int, quick: bool) -> dict[str, list[Any]]:
    """TIFU-KNN candidates around the paper's Instacart setting; k is capped at the number of other customers."""
    cap = max(1, n_customers - 1)
    ks = [5, 10, 25, 50, 100, 200, 300, 600, 900, 1200, 1800] if not quick else [50, 300, 900]
    grid: dict[str, list[Any]] = {
        "k": sorted({min(k, cap) for k in ks}),
        "r_b": [0.6, 0.7, 0.8, 0.9, 0.95, 1.0] if not quick else [0.8, 0.9, 1.0],
        "r_g": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0] if not quick else [0.6, 0.7, 0.8],
        "m": [1, 2, 3, 5, 7, 10] if not quick else [3, 7],
        "alpha": [0.2, 0.3, 0.4, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0] if not quick else [0.7, 0.9],
    }
    return grid


def tifu_start(n_customers: int) -> TifuParams:
    """The paper's Instacart setting, k capped at the number of other customers."""
    return replace(TIFU_PAPER_INSTACART, k=min(TIFU_PAPER_INSTACART.k, max(1, n_customers - 1)))

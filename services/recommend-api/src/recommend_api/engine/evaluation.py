"""Offline next-basket evaluation: leave-last-basket-out split, metrics, and two reference baselines.

Protocol and metrics follow Li et al., "A Next Basket Recommendation Reality Check" (TOIS 2023) and their released
evaluation code: every customer with at least two baskets has the last one held out as truth T; the model sees all
other baskets (of every customer). For a top-k list P, per customer:

* recall@k = |P ∩ T| / |T|;
* NDCG@k = DCG / IDCG with binary gains, DCG = Σ_{hits at rank r (1-based)} 1/log2(r + 1) and, as in their code,
  IDCG summed over all |T| truth items (not capped at k);
* repeat recall = |P ∩ T_rep| / |T_rep| where T_rep are truth items the customer bought before (in train), averaged
  only over customers with T_rep ≠ ∅; explore recall likewise over T_expl = T − T_rep and customers with T_expl ≠ ∅;
* repeat ratio = share of the k slots filled with items the customer bought before.

Each metric is the mean over the customers it is defined for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from recommend_api.engine.data import Transactions, sorted_contains
from recommend_api.engine.model import Kind, Model, Params


@dataclass(frozen=True)
class Holdout:
    """Truth baskets of the evaluated customers, in CSR layout.

    ``customers`` index the train (and full) ``customer_ids``; customer ``customers[u]``'s truth items are
    ``items[offsets[u]:offsets[u + 1]]`` (sorted), and ``repeat`` flags those the customer bought in train.
    """

    customers: npt.NDArray[np.int32]
    offsets: npt.NDArray[np.int64]
    items: npt.NDArray[np.int32]
    repeat: npt.NDArray[np.bool_]
    basket_time: npt.NDArray[np.float64]

    @property
    def n_users(self) -> int:
        return len(self.customers)


@dataclass(frozen=True)
class Metrics:
    """Means over evaluated customers (see the module docstring); ``dataclasses.asdict`` gives a JSON-ready dict."""

    recall: float
    ndcg: float
    recall_repeat: float
    recall_explore: float
    users: int
    hit_rate: float
    repeat_ratio: float
    users_repeat: int
    users_explore: int
    k: int


def split_last_basket(tx: Transactions) -> tuple[Transactions, Holdout]:
    """Hold out each customer's last basket when the customer has an earlier one; train on every other basket.

    Train keeps the index spaces of ``tx`` (customers, items, categories), so item indices from a model built on
    train address ``tx.skus`` directly.
    """
    offsets = tx.customer_basket_offsets()
    counts = np.diff(offsets)
    eval_customers = np.flatnonzero(counts >= 2).astype(np.int32)
    held = offsets[eval_customers + 1] - 1
    keep = np.ones(tx.n_baskets, dtype=bool)
    keep[held] = False
    train = tx.subset_baskets(keep)

    # Truth lines: lines of held baskets, ordered like eval_customers (baskets are sorted by customer).
    held_rank = np.full(tx.n_baskets, -1, dtype=np.int64)
    held_rank[held] = np.arange(len(held))
    line_rank = held_rank[tx.line_basket]
    sel = np.flatnonzero(line_rank >= 0)
    sel = sel[np.argsort(line_rank[sel], kind="stable")]
    truth_user = line_rank[sel]
    truth_items = tx.line_item[sel]
    t_offsets = np.concatenate(([0], np.cumsum(np.bincount(truth_user, minlength=len(held))))).astype(np.int64)

    # Repeat flag: (customer, item) present in train.
    train_keys = np.unique(train.basket_customer[train.line_basket].astype(np.int64) * tx.n_items + train.line_item)
    truth_keys = eval_customers[truth_user].astype(np.int64) * tx.n_items + truth_items
    repeat = sorted_contains(train_keys, truth_keys)
    return train, Holdout(
        customers=eval_customers,
        offsets=t_offsets,
        items=truth_items.astype(np.int32),
        repeat=repeat,
        basket_time=tx.basket_time[held],
    )


def _hits(
    topk: npt.NDArray[np.integer], holdout: Holdout, n_items: int, k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """The lists cut or padded to ``k``, their valid slots (repeats count once), hits, and hits of repeat items."""
    topk = np.asarray(topk, dtype=np.int64)
    n_users = holdout.n_users
    if topk.ndim != 2 or topk.shape[0] != n_users:
        raise ValueError(f"topk must have shape ({n_users}, k), got {topk.shape}")
    topk = topk[:, :k]
    if topk.shape[1] < k:
        topk = np.hstack([topk, np.full((n_users, k - topk.shape[1]), -1, dtype=np.int64)])
    valid = topk >= 0
    # A repeated item in one row counts at its first position only.
    order = np.argsort(topk, axis=1, kind="stable")
    srt = np.take_along_axis(topk, order, axis=1)
    dup_sorted = np.zeros_like(valid)
    dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
    dup = np.zeros_like(valid)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    valid &= ~dup

    rows = np.arange(n_users, dtype=np.int64)[:, None]
    pred_keys = np.where(valid, rows * n_items + topk, -1)
    truth_user = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(holdout.offsets))
    truth_keys = truth_user * n_items + holdout.items
    t_order = np.argsort(truth_keys)
    t_sorted = truth_keys[t_order]
    pos = np.clip(np.searchsorted(t_sorted, pred_keys), 0, max(len(t_sorted) - 1, 0))
    hit = valid & (t_sorted[pos] == pred_keys) if len(t_sorted) else np.zeros_like(valid)
    hit_repeat = hit & holdout.repeat[t_order][pos] if len(t_sorted) else hit
    return topk, valid, hit, hit_repeat


def recall_by_customer(
    topk: npt.NDArray[np.integer], holdout: Holdout, train: Transactions, k: int = 10
) -> npt.NDArray[np.float64]:
    """recall@k of each holdout customer with a truth basket: the values whose mean is ``score_topk``'s recall
    (for paired comparisons of two methods on the same customers)."""
    _, _, hit, _ = _hits(topk, holdout, train.n_items, k)
    n_truth = np.diff(holdout.offsets).astype(np.float64)
    has = n_truth > 0
    return np.asarray(hit.sum(axis=1)[has] / n_truth[has], dtype=np.float64)


def score_topk(topk: npt.NDArray[np.integer], holdout: Holdout, train: Transactions, k: int = 10) -> Metrics:
    """Metrics of top-k lists, one row per holdout customer (item indices, -1 = empty slot; repeats count once)."""
    n_users, n_items = holdout.n_users, train.n_items
    topk, valid, hit, hit_repeat = _hits(topk, holdout, n_items, k)
    hit_explore = hit & ~hit_repeat
    truth_user = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(holdout.offsets))

    n_truth = np.diff(holdout.offsets).astype(np.float64)
    n_rep = np.bincount(truth_user, weights=holdout.repeat.astype(np.float64), minlength=n_users)
    n_exp = n_truth - n_rep
    has = n_truth > 0
    recall = hit.sum(axis=1)[has] / n_truth[has]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hit * discounts).sum(axis=1)
    ideal_cum = np.concatenate(([0.0], np.cumsum(1.0 / np.log2(np.arange(2, int(n_truth.max(initial=0)) + 2)))))
    ndcg = dcg[has] / ideal_cum[n_truth[has].astype(np.int64)]
    rep_users, exp_users = n_rep > 0, n_exp > 0
    recall_rep = hit_repeat.sum(axis=1)[rep_users] / n_rep[rep_users]
    recall_exp = hit_explore.sum(axis=1)[exp_users] / n_exp[exp_users]

    # Repeat ratio: slots holding an item the customer bought in train.
    train_keys = np.unique(
        train.basket_customer[train.line_basket].astype(np.int64) * n_items + train.line_item.astype(np.int64)
    )
    cust_keys = np.where(valid, holdout.customers.astype(np.int64)[:, None] * n_items + topk, -1)
    repeat_slots = valid & sorted_contains(train_keys, cust_keys.ravel()).reshape(cust_keys.shape)

    def mean(x: npt.NDArray[np.float64]) -> float:
        return float(x.mean()) if len(x) else 0.0

    return Metrics(
        recall=mean(recall),
        ndcg=mean(ndcg),
        recall_repeat=mean(recall_rep),
        recall_explore=mean(recall_exp),
        users=int(has.sum()),
        hit_rate=mean(np.asarray(hit.any(axis=1))[has].astype(np.float64)),
        repeat_ratio=mean(repeat_slots.sum(axis=1) / k),
        users_repeat=int(rep_users.sum()),
        users_explore=int(exp_users.sum()),
        k=k,
    )


def _first_unique(rows: npt.NDArray[np.int64], k: int) -> npt.NDArray[np.int64]:
    """Per row, the first ``k`` distinct non-negative entries in order (-1 padded)."""
    order = np.argsort(rows, axis=1, kind="stable")
    srt = np.take_along_axis(rows, order, axis=1)
    dup_sorted = np.zeros(rows.shape, dtype=bool)
    dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
    dup = np.zeros(rows.shape, dtype=bool)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    keep = (rows >= 0) & ~dup
    pos = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    out = np.take_along_axis(np.where(keep, rows, -1), pos, axis=1)
    if out.shape[1] < k:
        out = np.hstack([out, np.full((rows.shape[0], k - out.shape[1]), -1, dtype=np.int64)])
    return out


def _popular_items(train: Transactions, k: int) -> npt.NDArray[np.int64]:
    """The ``k`` items in the most train baskets (ties: lower index)."""
    counts = np.bincount(train.line_item, minlength=train.n_items)
    order = np.argsort(-counts, kind="stable")[:k]
    return order[counts[order] > 0].astype(np.int64)


def popularity_topk(train: Transactions, holdout: Holdout, k: int = 10) -> npt.NDArray[np.int64]:
    """Global popularity: the same ``k`` most-bought items for everyone (G-TopFreq in Li et al.)."""
    pop = _popular_items(train, k)
    row = np.full(k, -1, dtype=np.int64)
    row[: len(pop)] = pop
    return np.tile(row, (holdout.n_users, 1))


def top_frequency_topk(train: Transactions, holdout: Holdout, k: int = 10) -> npt.NDArray[np.int64]:
    """Personal top frequency (P-TopFreq): the customer's items by number of baskets, ties by most recent purchase,
    topped up with globally popular items."""
    line_cust = train.basket_customer[train.line_basket].astype(np.int64)
    row_of = np.full(train.n_customers, -1, dtype=np.int64)
    row_of[holdout.customers] = np.arange(holdout.n_users)
    row = row_of[line_cust]
    sel = row >= 0
    key = row[sel] * train.n_items + train.line_item[sel]
    ukey, inv = np.unique(key, return_inverse=True)
    freq = np.bincount(inv, minlength=len(ukey))
    last = np.zeros(len(ukey))
    np.maximum.at(last, inv, train.basket_time[train.line_basket[sel]])
    urow, uitem = ukey // train.n_items, ukey % train.n_items
    order = np.lexsort((-last, -freq, urow))
    urow, uitem = urow[order], uitem[order]
    starts = np.searchsorted(urow, np.arange(holdout.n_users))
    rank = np.arange(len(urow)) - starts[urow]
    top = rank < k
    personal = np.full((holdout.n_users, k), -1, dtype=np.int64)
    personal[urow[top], rank[top]] = uitem[top]
    pop = _popular_items(train, 2 * k)
    return _first_unique(np.hstack([personal, np.tile(pop, (holdout.n_users, 1))]), k)


def model_topk(
    model: Model, train: Transactions, holdout: Holdout, k: int = 10, kind: Kind = "mixed"
) -> npt.NDArray[np.int64]:
    """The model's unfiltered top-k (of the ``kind`` asked for) for each holdout customer, as item indices of
    ``train``."""
    ids = [str(x) for x in train.customer_ids[holdout.customers]]
    top = model.top_items(ids, k, kind)
    model_skus = model.skus
    if len(model_skus) == train.n_items and np.array_equal(model_skus, np.asarray(train.skus, dtype=str)):
        return top
    index = {s: i for i, s in enumerate(np.asarray(train.skus, dtype=str).tolist())}
    remap = np.array([index.get(s, -1) for s in model_skus.tolist()] + [-1], dtype=np.int64)
    return remap[top]


def model_at_holdout(train: Transactions, holdout: Holdout, params: Params | None = None) -> Model:
    """The model built on ``train`` as it would answer each held-out customer when their basket was bought: recency
    anchored at the latest train basket, each evaluated customer's buy-again chances at their held-out basket's time
    (a live service knows the time of each request)."""
    customer_now = np.full(train.n_customers, float(train.basket_time.max(initial=0.0)))
    customer_now[holdout.customers] = holdout.basket_time
    return Model.build(train, params, now=float(customer_now.max(initial=0.0)), customer_now=customer_now)


def evaluate(tx: Transactions, params: Params | None = None, k: int = 10) -> dict[str, Metrics]:
    """Leave-last-basket-out metrics of the model (its default list, and its list of items new to the customer)
    and of both baselines, on the same split."""
    train, holdout = split_last_basket(tx)
    model = model_at_holdout(train, holdout, params)
    return {
        "model": score_topk(model_topk(model, train, holdout, k), holdout, train, k),
        "model_new_items": score_topk(model_topk(model, train, holdout, k, "new"), holdout, train, k),
        "popularity": score_topk(popularity_topk(train, holdout, k), holdout, train, k),
        "top_frequency": score_topk(top_frequency_topk(train, holdout, k), holdout, train, k),
    }

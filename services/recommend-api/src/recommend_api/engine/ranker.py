"""Buy-again ranking: the probability that a customer's next basket holds an item they bought before.

A gradient-boosted classifier (LightGBM) over features of each (customer, item) pair in the purchase history:
how often and how recently the customer bought the item (counts, position-decayed frequencies at four decays,
baskets since the first and the last purchase), its rhythm in days (days since bought, the customer's mean
interval for the item, their ratio), the customer's own rhythm (days since the last basket, the mean gap between
baskets, basket size, share of repeat lines) and the item's (customers, baskets, how often it is bought again).
The days are counted to "now": a customer who last came 20 days ago and buys milk every 10 days gets milk, one
who came yesterday gets what they forgot.

The classifier learns from the history itself, so a build needs no labels from outside: for each of the
``ranker_levels`` latest baskets of the customers (the target), the pairs of the baskets before it are labelled
by whether the target holds the item, with "now" set to the target's time. A sample of customers keeps the
training rows within ``ranker_rows``. The trained classifier then scores every pair of the whole history with
"now" at build time. Chosen by leave-last-basket-out evaluation on the Instacart sample (bench/REPORT.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

from recommend_api.engine.data import Transactions, concat_ranges

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

DECAYS = (0.5, 0.8, 0.9, 0.95)
FEATURES = (
    *(f"decayed_frequency_{d}" for d in DECAYS),
    "baskets_with_item",
    "share_of_baskets",
    "baskets_since_last",
    "baskets_since_first",
    "days_since_last",
    "mean_days_between",
    "days_since_over_interval",
    "baskets_since_over_interval",
    "customer_baskets",
    "customer_days_since_last_basket",
    "customer_mean_days_between_baskets",
    "customer_gap_over_mean_gap",
    "customer_gap_over_item_interval",
    "customer_basket_size",
    "customer_distinct_items",
    "customer_repeat_share",
    "item_baskets",
    "item_customers",
    "item_repeat_share",
)
_DAY = 86400.0
_MIN_INTERVAL_DAYS = 1.0 / 24.0  # same-day repeats count as an hour apart, so ratios stay finite
_CHUNK_LINES = 2_000_000


@dataclass(frozen=True)
class RankerParams:
    """LightGBM settings and the size of the training set drawn from the history."""

    levels: int
    rows: int
    trees: int
    learning_rate: float
    leaves: int
    seed: int = 0


@dataclass(frozen=True)
class BuyAgain:
    """Every (customer, item) pair of the history, sorted by customer then item, with its score and stats."""

    customer: IntArray
    item: IntArray
    probability: FloatArray
    times_bought: IntArray
    last_bought_at: FloatArray
    decayed_frequency: FloatArray  # at the model's ``basket_decay``, in [0, 1]


class _History:
    """Line-level views of ``tx`` shared by every cut of the history."""

    def __init__(self, tx: Transactions) -> None:
        self.tx = tx
        self.offsets = tx.customer_basket_offsets()
        self.n_baskets = np.diff(self.offsets)
        basket_pos = np.arange(tx.n_baskets, dtype=np.int64) - self.offsets[tx.basket_customer]
        self.line_customer = tx.basket_customer[tx.line_basket].astype(np.int64)
        self.line_pos = basket_pos[tx.line_basket]
        self.line_time = tx.basket_time[tx.line_basket]
        self.line_item = tx.line_item.astype(np.int64)
        lines_per_basket = np.bincount(tx.line_basket, minlength=tx.n_baskets)
        self.lines_before_basket = np.concatenate(([0], np.cumsum(lines_per_basket))).astype(np.int64)
        self.line_offsets = self.lines_before_basket[self.offsets]  # lines are sorted by customer
        key = self.line_customer * tx.n_items + self.line_item
        pair_key, inverse = np.unique(key, return_inverse=True)
        self.pair_customer, self.pair_item = pair_key // tx.n_items, pair_key % tx.n_items
        self.pair_first_pos = np.full(len(pair_key), np.iinfo(np.int64).max)
        np.minimum.at(self.pair_first_pos, inverse, self.line_pos)
        self.pairs_per_customer = np.bincount(self.pair_customer, minlength=tx.n_customers)

    def item_stats(self, cut: IntArray) -> tuple[FloatArray, FloatArray]:
        """Baskets and customers per item in the history before each customer's ``cut``."""
        n_items = self.tx.n_items
        in_line = self.line_pos < cut[self.line_customer]
        baskets = np.bincount(self.line_item[in_line], minlength=n_items).astype(np.float64)
        in_pair = self.pair_first_pos < cut[self.pair_customer]
        customers = np.bincount(self.pair_item[in_pair], minlength=n_items).astype(np.float64)
        return baskets, customers

    def features(
        self,
        customers: IntArray,
        cut: IntArray,
        now: FloatArray,
        items: tuple[FloatArray, FloatArray],
        decay: float,
    ) -> tuple[IntArray, IntArray, npt.NDArray[np.float32], IntArray, FloatArray, FloatArray]:
        """Pairs of ``customers`` (sorted) in their baskets before ``cut``, as seen at ``now`` (per customer).

        Returns pair customers, items, the feature matrix (columns: FEATURES), times bought, last purchase time and
        the decayed frequency at ``decay``.
        """
        tx, n_items = self.tx, self.tx.n_items
        lo, hi = self.line_offsets[customers], self.line_offsets[customers + 1]
        lines = concat_ranges(lo, hi)
        lines = lines[self.line_pos[lines] < cut[self.line_customer[lines]]]
        cust = self.line_customer[lines]
        ago = (cut[cust] - 1 - self.line_pos[lines]).astype(np.float64)
        key, inverse = np.unique(cust * n_items + self.line_item[lines], return_inverse=True)
        pc, pi = key // n_items, key % n_items
        n_pairs = len(key)
        when = self.line_time[lines]

        count = np.bincount(inverse, minlength=n_pairs).astype(np.float64)
        n = cut[pc].astype(np.float64)
        decayed = {}
        for d in dict.fromkeys((*DECAYS, decay)):  # the model's decay is usually one of DECAYS: once
            total = (1.0 - d**n) / (1.0 - d) if d < 1.0 else n
            decayed[d] = np.bincount(inverse, weights=d**ago, minlength=n_pairs) / total
        last_ago = np.full(n_pairs, np.inf)
        np.minimum.at(last_ago, inverse, ago)
        first_ago = np.zeros(n_pairs)
        np.maximum.at(first_ago, inverse, ago)
        last_t = np.full(n_pairs, -np.inf)
        np.maximum.at(last_t, inverse, when)
        first_t = np.full(n_pairs, np.inf)
        np.minimum.at(first_t, inverse, when)

        start = self.offsets[pc]
        customer_last = tx.basket_time[start + cut[pc] - 1]
        customer_first = tx.basket_time[start]
        customer_lines = (self.lines_before_basket[start + cut[pc]] - self.lines_before_basket[start]).astype(
            np.float64
        )
        row = np.searchsorted(customers, pc)
        distinct = np.bincount(row, minlength=len(customers))[row].astype(np.float64)
        item_baskets, item_customers = items[0][pi], items[1][pi]
        now_p = now[row]
        with np.errstate(divide="ignore", invalid="ignore"):
            repeats = np.maximum(count - 1.0, 1.0)
            interval = np.where(count > 1, np.maximum((last_t - first_t) / _DAY / repeats, _MIN_INTERVAL_DAYS), np.nan)
            days_since = (now_p - last_t) / _DAY
            gap = (now_p - customer_last) / _DAY
            mean_gap = (customer_last - customer_first) / _DAY / np.maximum(n - 1.0, 1.0)
            columns = [
                *(decayed[d] for d in DECAYS),
                count,
                count / n,
                last_ago,
                first_ago,
                days_since,
                interval,
                days_since / interval,
                np.where(count > 1, (last_ago + 1.0) / np.maximum((first_ago - last_ago) / repeats, 1.0), np.nan),
                n,
                gap,
                mean_gap,
                gap / np.maximum(mean_gap, 0.5),
                gap / interval,
                customer_lines / n,
                distinct,
                1.0 - distinct / customer_lines,
                item_baskets,
                item_customers,
                1.0 - item_customers / np.maximum(item_baskets, 1.0),
            ]
        x = np.empty((n_pairs, len(columns)), dtype=np.float32, order="F")  # column by column, contiguous
        for k, column in enumerate(columns):
            x[:, k] = column
        return pc, pi, x, count.astype(np.int64), last_t, decayed[decay]


def _training_set(
    h: _History, p: RankerParams, decay: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
    """Features and labels of pairs before each of the latest ``p.levels`` baskets (sampled to ``p.rows``)."""
    tx, rng = h.tx, np.random.default_rng(p.seed)
    xs: list[npt.NDArray[np.float32]] = []
    ys: list[npt.NDArray[np.float32]] = []
    per_level = max(p.rows // max(p.levels, 1), 1)
    for level in range(1, p.levels + 1):
        cut = np.maximum(h.n_baskets - level, 0)
        eligible = np.flatnonzero(cut >= 1)
        if len(eligible) == 0:
            break
        expected = h.pairs_per_customer[eligible].sum()
        if expected > per_level:
            size = max(1, int(len(eligible) * per_level / expected))
            eligible = np.sort(rng.choice(eligible, size=size, replace=False))
        target = h.offsets[eligible] + cut[eligible]
        pc, pi, x, _, _, _ = h.features(eligible, cut, tx.basket_time[target], h.item_stats(cut), decay)
        truth = concat_ranges(h.lines_before_basket[target], h.lines_before_basket[target + 1])
        truth_key = np.sort(h.line_customer[truth] * tx.n_items + h.line_item[truth])
        key = pc * tx.n_items + pi
        pos = np.clip(np.searchsorted(truth_key, key), 0, max(len(truth_key) - 1, 0))
        label = truth_key[pos] == key if len(truth_key) else np.zeros(len(key), dtype=bool)
        xs.append(x)
        ys.append(label.astype(np.float32))
    if not xs:
        return None
    y = np.concatenate(ys)
    if y.min(initial=1.0) == y.max(initial=0.0):  # one class only: nothing to learn
        return None
    return np.vstack(xs), y


def buy_again(tx: Transactions, p: RankerParams, *, now: FloatArray, decay: float) -> BuyAgain:
    """Score every (customer, item) pair of ``tx``, each customer at its ``now`` (see the module docstring)."""
    h = _History(tx)
    training = _training_set(h, p, decay)
    booster = None
    if training is not None:
        booster = lgb.train(
            {
                "objective": "binary",
                "learning_rate": p.learning_rate,
                "num_leaves": p.leaves,
                "min_data_in_leaf": 50,
                "bagging_fraction": 0.8,
                "bagging_freq": 1,
                "feature_fraction": 0.8,
                "seed": p.seed,
                "deterministic": True,
                "force_row_wise": True,
                "verbosity": -1,
            },
            lgb.Dataset(training[0], label=training[1], feature_name=list(FEATURES), free_raw_data=True),
            num_boost_round=p.trees,
        )
        del training
    cut = h.n_baskets
    items = h.item_stats(cut)
    parts: list[tuple[IntArray, IntArray, FloatArray, IntArray, FloatArray, FloatArray]] = []
    # Customer chunks of about _CHUNK_LINES lines each bound the feature matrix's memory.
    bounds = np.searchsorted(h.line_offsets, np.arange(0, tx.n_lines + _CHUNK_LINES, _CHUNK_LINES))
    bounds = np.unique(np.clip(np.r_[0, bounds, tx.n_customers], 0, tx.n_customers))
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        customers = np.arange(lo, hi, dtype=np.int64)
        pc, pi, x, times, last, dec = h.features(customers, cut, now[lo:hi], items, decay)
        prob = booster.predict(x) if booster is not None else dec
        parts.append((pc, pi, np.asarray(prob, dtype=np.float64), times, last, dec))
    if not parts:
        none = np.zeros(0, dtype=np.int64)
        return BuyAgain(none, none, np.zeros(0), none, np.zeros(0), np.zeros(0))
    return BuyAgain(*(np.concatenate([part[k] for part in parts]) for k in range(6)))  # type: ignore[arg-type]

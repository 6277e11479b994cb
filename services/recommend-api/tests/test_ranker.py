"""Buy-again ranker: features and training labels computed by hand, and a rhythm the classifier must learn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommend_api.engine.data import Transactions
from recommend_api.engine.model import Model, Params
from recommend_api.engine.ranker import FEATURES, RankerParams, _History, _training_set, buy_again

DAY = 86400.0
T0 = 1_800_000_000.0


def history() -> Transactions:
    """c1: day 0 {A, B}, day 10 {A}, day 20 {A, C}; c2: day 5 {A, D}."""
    lines = [("c1", "o1", "A", 0), ("c1", "o1", "B", 0), ("c1", "o2", "A", 10), ("c1", "o3", "A", 20),
             ("c1", "o3", "C", 20), ("c2", "o4", "A", 5), ("c2", "o4", "D", 5)]  # fmt: skip
    return Transactions.from_lines(
        customer_id=[x[0] for x in lines],
        order_id=[x[1] for x in lines],
        sku=[x[2] for x in lines],
        category=[None] * len(lines),
        purchased_at=[T0 + x[3] * DAY for x in lines],
    )


def test_features_by_hand() -> None:
    tx = history()
    h = _History(tx)
    customers = np.arange(tx.n_customers, dtype=np.int64)
    now = np.full(tx.n_customers, T0 + 25 * DAY)
    pc, pi, x, times, last, dec = h.features(customers, h.n_baskets, now, h.item_stats(h.n_baskets), 0.9)
    sku = tx.skus.tolist()
    rows = zip(pc.tolist(), pi.tolist(), x.tolist(), strict=True)
    got = {(tx.customer_ids[c], sku[i]): dict(zip(FEATURES, row, strict=True)) for c, i, row in rows}
    assert set(got) == {("c1", "A"), ("c1", "B"), ("c1", "C"), ("c2", "A"), ("c2", "D")}
    a = got[("c1", "A")]
    assert a["baskets_with_item"] == 3 and a["share_of_baskets"] == 1.0
    assert a["baskets_since_last"] == 0 and a["baskets_since_first"] == 2
    assert a["decayed_frequency_0.5"] == pytest.approx(1.0)
    assert a["days_since_last"] == pytest.approx(5.0) and a["mean_days_between"] == pytest.approx(10.0)
    assert a["days_since_over_interval"] == pytest.approx(0.5)
    assert a["baskets_since_over_interval"] == pytest.approx(1.0)  # bought every basket, last one just now
    assert a["customer_baskets"] == 3 and a["customer_days_since_last_basket"] == pytest.approx(5.0)
    assert a["customer_mean_days_between_baskets"] == pytest.approx(10.0)
    assert a["customer_gap_over_mean_gap"] == pytest.approx(0.5)
    assert a["customer_gap_over_item_interval"] == pytest.approx(0.5)
    assert a["customer_basket_size"] == pytest.approx(5 / 3) and a["customer_distinct_items"] == 3
    assert a["customer_repeat_share"] == pytest.approx(1 - 3 / 5)
    assert a["item_baskets"] == 4 and a["item_customers"] == 2
    assert a["item_repeat_share"] == pytest.approx(0.5)
    b = got[("c1", "B")]
    assert b["baskets_with_item"] == 1 and b["baskets_since_last"] == 2 and b["days_since_last"] == pytest.approx(25)
    assert b["decayed_frequency_0.5"] == pytest.approx(0.25 / 1.75)
    assert math.isnan(b["mean_days_between"]) and math.isnan(b["days_since_over_interval"])
    d = got[("c2", "D")]
    assert d["customer_baskets"] == 1 and d["customer_days_since_last_basket"] == pytest.approx(20)
    # Per pair: times bought, last purchase, decayed frequency at the requested decay.
    row = {(tx.customer_ids[c], sku[i]): k for k, (c, i) in enumerate(zip(pc, pi, strict=True))}
    assert times[row[("c1", "A")]] == 3 and last[row[("c1", "A")]] == T0 + 20 * DAY
    assert dec[row[("c1", "B")]] == pytest.approx(0.81 / (1 + 0.9 + 0.81))


def test_training_labels_by_hand() -> None:
    # Level 1: c1's history {A, B}, {A} against its last basket {A, C}; c2 has no earlier basket.
    tx = history()
    h = _History(tx)
    training = _training_set(h, RankerParams(levels=1, rows=1000, trees=1, learning_rate=0.1, leaves=2), 0.9)
    assert training is not None
    x, y = training
    assert y.tolist() == [1.0, 0.0]  # (c1, A) bought again, (c1, B) not; C was new, so no candidate
    col = {name: k for k, name in enumerate(FEATURES)}
    assert x[:, col["baskets_with_item"]].tolist() == [2.0, 1.0]
    assert x[:, col["days_since_last"]].tolist() == pytest.approx([10.0, 20.0])  # now = the target's time
    # Item counts exclude every customer's latest basket (c2's only one too): A in c1's two earlier baskets.
    assert x[:, col["item_baskets"]].tolist() == [2.0, 1.0]
    assert x[:, col["item_customers"]].tolist() == [1.0, 1.0]


def rhythm(seed: int) -> Transactions:
    """Weekly shoppers: staple S in every basket, item M every 4th basket (phase per customer), noise items."""
    rng = np.random.default_rng(seed)
    cust, order, sku, when = [], [], [], []
    for c in range(300):
        phase, start = int(rng.integers(4)), float(rng.uniform(0, 7))
        for b in range(12 + int(rng.integers(4))):
            items = {"S"} | {f"n{k}" for k in rng.integers(0, 60, 3).tolist()}
            if (b + phase) % 4 == 0:
                items.add("M")
            for s in sorted(items):
                cust.append(f"c{c}")
                order.append(f"c{c}-{b}")
                sku.append(s)
                when.append(T0 + (start + 7 * b) * DAY)
    return Transactions.from_lines(
        customer_id=cust, order_id=order, sku=sku, category=[None] * len(sku), purchased_at=when
    )


def test_the_classifier_learns_when_an_item_is_due() -> None:
    # M comes every fourth week: due for customers who last bought it three baskets ago, not for those who bought
    # it last time; frequency alone cannot tell them apart, the rhythm features can.
    tx = rhythm(1)
    p = RankerParams(levels=4, rows=100_000, trees=100, learning_rate=0.1, leaves=15)
    now = float(tx.basket_time.max()) + 7 * DAY
    scored = buy_again(tx, p, now=np.full(tx.n_customers, now), decay=0.9)
    m, s = int(np.flatnonzero(tx.skus == "M")[0]), int(np.flatnonzero(tx.skus == "S")[0])
    h = _History(tx)
    due, fresh = [], []
    for c in range(tx.n_customers):
        rows = np.flatnonzero((scored.customer == c) & (scored.item == m))
        last_basket = tx.basket_time[h.offsets[c + 1] - 1]
        if len(rows) == 0:
            continue
        p_m = float(scored.probability[rows[0]])
        since = (last_basket - scored.last_bought_at[rows[0]]) / DAY
        (due if since == 21 else fresh if since == 0 else []).append(p_m)
        p_s = float(scored.probability[np.flatnonzero((scored.customer == c) & (scored.item == s))[0]])
        assert p_s > 0.9
    assert len(due) > 30 and len(fresh) > 30
    assert max(fresh) < min(due)
    assert np.median(due) > 0.9 and np.median(fresh) < 0.05


def test_model_lists_items_bought_before_by_probability_then_new_ones() -> None:
    tx = rhythm(2)
    model = Model.build(tx, Params(ranker_trees=50, ranker_learning_rate=0.1), now=float(tx.basket_time.max()))
    for customer in tx.customer_ids[:20].tolist():
        ranked = model.recommend(customer, 50)
        kinds = [s.reason for s in ranked]
        assert kinds[0] == "repeat" and ranked[0].sku == "S"
        repeats = [s.score for s in ranked if s.reason == "repeat"]
        assert repeats == sorted(repeats, reverse=True) and all(0.0 <= x <= 1.0 for x in repeats)
        first_new = kinds.index("bought_together") if "bought_together" in kinds else len(kinds)
        assert set(kinds[first_new:]) <= {"bought_together", "popular"}

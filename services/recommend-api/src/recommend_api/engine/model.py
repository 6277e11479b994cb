"""The recommendation model: built once from :class:`Transactions` with sparse matrix algebra, served from memory.

Build computes, without Python loops over order lines:

* popularity: per item Σ over its baskets of 0.5^(age / half-life), ordered overall and per category;
* co-occurrence: pair counts C = BᵀB of the binary basket × item matrix B; per item the top related items by
  confidence × lift, and the items that most often follow it into a basket (by confidence alone); association
  rules (pairs and triples, :mod:`recommend_api.engine.rules`);
* buy-again: the probability that the customer's next basket holds each item they bought before, from a
  gradient-boosted classifier over frequency, recency and purchase-rhythm features that learns from the
  customers' own latest baskets at every build (:mod:`recommend_api.engine.ranker`);
* items new to the customer: co-occurrence X(u, i) = Σ_j V(u, j) · confidence(j → i) / Σ_j V(u, j) over the
  customer's top ``history_items`` items j (V = position-decayed basket frequency: basket j of n weighs
  ``basket_decay``^(n-1-j), normalised so V ∈ [0, 1]) and the items that most often follow them. Ranking by
  confidence rather than confidence × lift raised explore recall@10 on Instacart from 0.022 to 0.028 with ten
  new items, and from 0.0158 to 0.0186 with every second slot new (bench/REPORT.md).
  A customer's list is their items by buy-again probability, then new items by X; every ``explore_every``-th
  slot holds the best new item unless one already ranks there. Reasons: "repeat" for items bought before,
  "bought_together" for new ones. Per customer the top ``candidates`` items of each kind are stored in the list's
  order (CSR layout; they hold the list's top ``candidates``), so a request is a slice and a filter, also for one
  kind only (``kind="repeat"``: a "buy it again" row; ``kind="new"``: a "discover" row of items the customer never
  bought, topped up with popular ones; every item a customer bought is stored, so none of them is shown as new).
"""

from __future__ import annotations

import io
import json
import time
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

from recommend_api.engine.data import Transactions, concat_ranges, sorted_contains
from recommend_api.engine.ranker import RankerParams, buy_again
from recommend_api.engine.rules import Association, RuleTable, mine_rule_table, table_associations

__all__ = ["Association", "Kind", "Model", "Params", "Suggestion"]

Reason = Literal["repeat", "bought_together", "popular"]
Kind = Literal["mixed", "repeat", "new"]
_REASONS: tuple[Reason, ...] = ("repeat", "bought_together")
_DAY = 86400.0


@dataclass(frozen=True)
class Suggestion:
    """One recommended item and why."""

    sku: str
    score: float
    reason: Reason
    category: str | None = None
    times_bought: int | None = None
    last_bought_at: float | None = None
    because: tuple[str, ...] = ()


@dataclass(frozen=True)
class Params:
    """Build parameters, chosen by leave-last-basket-out evaluation on the Instacart sample.

    Settings were compared on a validation split (second-to-last basket as truth, last basket removed) and then
    reported on the last basket (bench/REPORT.md): recall@10 0.39 against 0.356 for personal top frequency and
    0.384 for TIFU-KNN tuned on the same split.

    basket_decay: weight ratio between consecutive baskets of a customer in V, which picks the customer's top
        items for co-occurrence.
    history_items: the customer's top this many items seed co-occurrence.
    ranker_levels: the buy-again classifier learns from each customer's latest this many baskets (as targets);
        more levels help on small data (1 → 6: +0.006 recall@10 on Instacart), big data fills ``ranker_rows``
        from fewer customers.
    ranker_rows: at most about this many (customer, item) pairs train the classifier (customers are sampled).
        The classifier wants every row it can get: on The Complete Journey (2,469 households, 4.9 million pairs
        at six levels) 300,000 → 4,000,000 rows raised validation recall@10 from 0.161 to 0.172; on ten million
        lines the larger sample adds about 14 s to a build.
    ranker_trees, ranker_learning_rate, ranker_leaves: LightGBM boosting rounds, shrinkage and leaves per tree.
    explore_every: every n-th slot shows the best item the customer never bought (0 = off). Off by default: on
        Instacart, where next baskets are mostly repeats, one slot in ten costs 0.012 recall@10 for 0.011 explore
        recall@10, every second slot 0.106 for 0.019; worth enabling where discovery matters more than hit rate.
    candidates: items stored per customer for serving (and as many of each kind, items bought before and new ones).
    related_per_item: related items stored per item (ranked by confidence × lift), and as many items that follow
        it (ranked by confidence), which seed the customer's new items and name them in ``because``.
    min_pair_count: baskets two items must share to be related.
    popularity_half_life_days: a purchase this old counts half for popularity.
    rule_min_support, rule_min_confidence, rule_max_len: thresholds of the rules precomputed for ``Model.rules``.
    max_rules: rules kept (highest lift first).
    """

    basket_decay: float = 0.9
    history_items: int = 10
    ranker_levels: int = 6
    ranker_rows: int = 4_000_000
    ranker_trees: int = 100
    ranker_learning_rate: float = 0.06
    ranker_leaves: int = 31
    explore_every: int = 0
    candidates: int = 50
    related_per_item: int = 30
    min_pair_count: int = 2
    popularity_half_life_days: float = 30.0
    rule_min_support: float = 0.001
    rule_min_confidence: float = 0.05
    rule_max_len: int = 3
    max_rules: int = 100_000


IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def category_key(name: str) -> str:
    """What a category is matched by when asked for: NFKC, whitespace collapsed, case folded."""
    return " ".join(unicodedata.normalize("NFKC", name).split()).casefold()


def _top_per_row(rows: IntArray, scores: FloatArray, n_rows: int, k: int) -> tuple[IntArray, IntArray]:
    """CSR offsets, and the positions (into the inputs) of each row's ``k`` best entries (scores ≥ 0; ties: the
    earlier entry, so inputs sorted by column within a row break ties by lower column).

    One stable sort of row − score (scores scaled into [0, 1]) orders by row, then best first.
    """
    top = float(scores.max(initial=0.0))
    order = np.argsort(rows * 2.0 - scores / (top if top > 0 else 1.0), kind="stable")
    starts = np.searchsorted(rows[order], np.arange(n_rows + 1))
    rank = np.arange(len(order)) - starts[rows[order]]
    selected = order[rank < k]
    counts = np.bincount(rows[selected], minlength=n_rows)
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64), selected


class Model:
    """In-memory recommendation model; every query is a few slices of flat numpy arrays."""

    def __init__(self, arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> None:
        self._a = arrays
        if "next_items" not in arrays:  # stored before the lists by confidence: explain with the related items
            arrays["next_offsets"], arrays["next_items"] = arrays["rel_offsets"], arrays["rel_items"]
        if "bought_items" not in arrays:  # stored before every bought item was: its repeat candidates stand in
            repeat = arrays["cand_reason"] == 0
            arrays["bought_offsets"] = np.concatenate(([0], np.cumsum(repeat)))[arrays["cand_offsets"]]
            arrays["bought_items"] = arrays["cand_items"][repeat]
        self.sizes: dict[str, int] = {k: int(v) for k, v in meta["sizes"].items()}
        self.built_at: float = float(meta["built_at"])
        known = {f.name for f in fields(Params)}  # a model stored by an earlier version may name other settings
        self.params = Params(**{k: v for k, v in meta["params"].items() if k in known})
        self._skus: list[str] = arrays["skus"].tolist()
        self._categories: list[str] = arrays["categories"].tolist()
        self._item_index = {s: i for i, s in enumerate(self._skus)}
        self._customer_index = {c: i for i, c in enumerate(arrays["customer_ids"].tolist())}
        # Categories are asked for as people type them: "乳品 ", "bakery" for "Bakery".
        self._category_codes: dict[str, list[int]] = {}
        for code, name in enumerate(self._categories):
            self._category_codes.setdefault(category_key(name), []).append(code)
        self._rules = RuleTable(
            antecedent=arrays["rule_antecedent"],
            consequent=arrays["rule_consequent"],
            count=arrays["rule_count"],
            antecedent_count=arrays["rule_antecedent_count"],
            consequent_count=arrays["rule_consequent_count"],
            n_baskets=self.sizes["baskets"],
        )

    # ------------------------------------------------------------------ build

    @classmethod
    def build(
        cls,
        tx: Transactions,
        params: Params | None = None,
        *,
        now: float | None = None,
        customer_now: FloatArray | None = None,
    ) -> Model:
        """Build every precomputed structure from ``tx``; ``now`` (default: current time) anchors recency.

        ``customer_now`` (per customer of ``tx``; default ``now`` for all) is the moment each customer's buy-again
        chances are estimated for: offline evaluation sets it to each held-out basket's time.
        """
        p = params or Params()
        now = time.time() if now is None else float(now)
        at = np.full(tx.n_customers, now) if customer_now is None else np.asarray(customer_now, dtype=np.float64)
        n_items, n_cust, n_baskets = tx.n_items, tx.n_customers, tx.n_baskets
        a: dict[str, npt.NDArray[Any]] = {
            "customer_ids": np.asarray(tx.customer_ids, dtype=str),
            "skus": np.asarray(tx.skus, dtype=str),
            "categories": np.asarray(tx.categories, dtype=str),
            "item_category": tx.item_category.astype(np.int32),
        }
        item_count = np.bincount(tx.line_item, minlength=n_items).astype(np.int64)
        a["item_count"] = item_count

        # Popularity with recency decay, overall and per category.
        age_days = np.maximum(now - tx.basket_time, 0.0) / _DAY
        basket_weight = 0.5 ** (age_days / p.popularity_half_life_days)
        pop = np.bincount(tx.line_item, weights=basket_weight[tx.line_basket], minlength=n_items)
        bought = np.flatnonzero(item_count > 0)
        pop_order = bought[np.lexsort((bought, -pop[bought]))]
        a["pop_score"] = pop.astype(np.float64)
        a["pop_order"] = pop_order.astype(np.int32)
        cat = tx.item_category[pop_order]
        with_cat = cat >= 0
        by_cat = pop_order[with_cat][np.argsort(cat[with_cat], kind="stable")]
        a["cat_items"] = by_cat.astype(np.int32)
        a["cat_offsets"] = np.concatenate(
            ([0], np.cumsum(np.bincount(cat[with_cat], minlength=len(tx.categories))))
        ).astype(np.int64)

        # Co-occurrence: related items per item.
        b = tx.basket_item_matrix()
        co = sp.csr_matrix(b.T @ b)
        co.sort_indices()  # ties among related items: lower column first
        co = co.tocoo()
        off_diag = (co.row != co.col) & (co.data >= p.min_pair_count - 0.5)
        r, c = co.row[off_diag].astype(np.int64), co.col[off_diag].astype(np.int64)
        cnt = np.rint(co.data[off_diag]).astype(np.int64)
        del co
        conf = cnt / item_count[r]
        lift = conf * n_baskets / item_count[c]
        rel_off, kept = _top_per_row(r, conf * lift, n_items, p.related_per_item)
        a["rel_offsets"], a["rel_items"], a["rel_counts"] = rel_off, c[kept].astype(np.int32), cnt[kept]
        # Items that most often follow each item into a basket (by confidence alone): what a customer who buys the
        # item is likely to try next. Lift would favour rare items, which seldom are the next purchase.
        next_off, kept = _top_per_row(r, conf, n_items, p.related_per_item)
        a["next_offsets"], a["next_items"] = next_off, c[kept].astype(np.int32)
        conf_next = sp.csr_matrix((conf[kept], (r[kept], c[kept])), shape=(n_items, n_items))
        n_pairs = int(len(cnt) // 2)
        del r, c, cnt, conf, lift, kept

        # Personal model.
        a.update(_personal_candidates(tx, p, conf_next, at))

        # Association rules.
        rules = mine_rule_table(
            tx, min_support=p.rule_min_support, min_confidence=p.rule_min_confidence, max_len=p.rule_max_len
        )
        best = np.lexsort((-rules.confidence, -rules.lift))[: p.max_rules]
        a["rule_antecedent"] = rules.antecedent[best].astype(np.int32).reshape(-1, 2)
        a["rule_consequent"] = rules.consequent[best].astype(np.int32)
        a["rule_count"] = rules.count[best]
        a["rule_antecedent_count"] = rules.antecedent_count[best]
        a["rule_consequent_count"] = rules.consequent_count[best]

        meta = {
            "built_at": now,
            "params": asdict(p),
            "sizes": {
                "customers": n_cust,
                "items": n_items,
                "categories": len(tx.categories),
                "baskets": n_baskets,
                "lines": tx.n_lines,
                "pairs": n_pairs,
                "rules": len(best),
                "candidates": len(a["cand_items"]),
            },
        }
        return cls(a, meta)

    # ------------------------------------------------------------- persistence

    def to_bytes(self) -> bytes:
        """``np.savez_compressed`` archive of the arrays plus a JSON header; loads without pickle."""
        buf = io.BytesIO()
        meta = {"built_at": self.built_at, "params": asdict(self.params), "sizes": self.sizes}
        arrays: dict[str, Any] = {"__meta__": np.array(json.dumps(meta)), **self._a}
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Model:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
            meta = json.loads(str(z["__meta__"]))
        return cls(arrays, meta)

    # ------------------------------------------------------------------ lookups

    @property
    def skus(self) -> npt.NDArray[np.str_]:
        """Item skus; item indices returned by ``top_items`` address this array."""
        return self._a["skus"]

    def knows_customer(self, customer_id: str) -> bool:
        return customer_id in self._customer_index

    def knows_item(self, sku: str) -> bool:
        return sku in self._item_index

    def category_of(self, sku: str) -> str | None:
        i = self._item_index.get(sku)
        if i is None:
            return None
        c = int(self._a["item_category"][i])
        return self._categories[c] if c >= 0 else None

    def _item_ids(self, skus: Collection[str]) -> IntArray:
        # Each item once: a cart sent a line per unit weighs an item no more than a cart with it once.
        return np.array([self._item_index[s] for s in dict.fromkeys(skus) if s in self._item_index], dtype=np.int64)

    def _cat_name(self, item: int) -> str | None:
        c = int(self._a["item_category"][item])
        return self._categories[c] if c >= 0 else None

    def _cat_names(self, items: npt.NDArray[np.integer[Any]]) -> list[str | None]:
        return [self._categories[c] if c >= 0 else None for c in self._a["item_category"][items].tolist()]

    def _allowed(
        self, items: IntArray, *, category: str | None, exclude: IntArray, avoid_categories: Collection[str] = ()
    ) -> npt.NDArray[np.bool_]:
        """Mask of ``items`` passing the category filter, the excluded items and the avoided categories."""
        ok = ~np.isin(items, exclude)
        item_cat = self._a["item_category"][items]
        if category is not None:
            ok &= np.isin(item_cat, self._codes((category,)))
        avoid = self._codes(avoid_categories)
        if avoid:
            ok &= ~np.isin(item_cat, avoid)
        return np.asarray(ok)

    def _codes(self, categories: Collection[str]) -> list[int]:
        """The categories named, matched by `category_key` (one name may match several written differently)."""
        return [code for name in categories for code in self._category_codes.get(category_key(name), ())]

    # ------------------------------------------------------------------ queries

    def popular(self, k: int, *, category: str | None = None, exclude: Collection[str] = ()) -> list[Suggestion]:
        """Most popular items (recency-decayed), optionally within one category."""
        return self._popular(k, category=category, exclude=self._item_ids(exclude))

    def _popular(
        self, k: int, *, category: str | None, exclude: IntArray, avoid_categories: Collection[str] = ()
    ) -> list[Suggestion]:
        if k <= 0:
            return []
        if category is None:
            pool = self._a["pop_order"]
        else:
            offsets = self._a["cat_offsets"]
            pools = [self._a["cat_items"][offsets[c] : offsets[c + 1]] for c in self._codes((category,))]
            if not pools:
                return []
            pool = np.concatenate(pools)  # in popularity order, as pop_order: best first, ties by item
            pool = pool if len(pools) == 1 else pool[np.lexsort((pool, -self._a["pop_score"][pool]))]
        out: list[Suggestion] = []
        start, step = 0, max(4 * k, 64)
        filtered = len(exclude) > 0 or len(avoid_categories) > 0
        while len(out) < k and start < len(pool):
            chunk = pool[start : start + step].astype(np.int64)
            start += step
            if filtered:
                chunk = chunk[self._allowed(chunk, category=None, exclude=exclude, avoid_categories=avoid_categories)]
            chunk = chunk[: k - len(out)]
            scores = self._a["pop_score"][chunk].tolist()
            categories = self._cat_names(chunk)
            for i, score, category_name in zip(chunk.tolist(), scores, categories, strict=True):
                out.append(Suggestion(self._skus[i], score, "popular", category_name))
        return out

    def _customer(self, customer_id: str | None) -> int | None:
        """The customer's index in the model, None when unknown."""
        return self._customer_index.get(customer_id) if customer_id is not None else None

    def _span(self, layout: str, u: int) -> slice:
        """Customer ``u``'s entries in a per-customer CSR layout (``cand`` or ``bought``)."""
        off = self._a[f"{layout}_offsets"]
        return slice(int(off[u]), int(off[u + 1]))

    def _from_candidates(
        self,
        u: int,
        k: int,
        *,
        category: str | None,
        exclude: IntArray,
        avoid_categories: Collection[str] = (),
        kind: Kind = "mixed",
        name_avoided: bool = True,
    ) -> list[Suggestion]:
        """The customer's stored list, filtered, topped up with popular items; ``name_avoided=False``: no excluded item
        nor item of an avoided category is named in ``because`` either, nor is an item offered that only they explain
        (a win-back offer is not made because of what the complaint was about)."""
        rows = self._span("cand", u)
        items = self._a["cand_items"][rows]
        ok = None if kind == "mixed" else (self._a["cand_reason"][rows] == 0) == (kind == "repeat")
        if len(exclude) > 0 or category is not None or len(avoid_categories) > 0:
            allowed = self._allowed(
                items.astype(np.int64), category=category, exclude=exclude, avoid_categories=avoid_categories
            )
            ok = allowed if ok is None else ok & allowed
        followers = None  # (own item, item following it) pairs that may explain a new item; None: all of them
        if not name_avoided:
            own = self._own_items(rows)
            followers = self._followed_by(
                own[self._allowed(own, category=None, exclude=exclude, avoid_categories=avoid_categories)]
            )
            # An item new to the customer that follows only avoided items would be offered because of them.
            for_avoided = (
                (self._a["cand_reason"][rows] == 1)
                & np.isin(items, self._followed_by(own)[1])
                & ~np.isin(items, followers[1])
            )
            ok = ~for_avoided if ok is None else ok & ~for_avoided
        # With nothing to filter out, the stored order is the answer.
        picked = np.arange(len(items))[:k] if ok is None else np.flatnonzero(ok)[:k]
        out = self._candidates(rows, picked, followers=followers)
        if len(out) < k and kind != "repeat":
            taken = np.concatenate([exclude, items[picked].astype(np.int64)])
            if kind == "new":
                taken = np.concatenate([taken, self._a["bought_items"][self._span("bought", u)].astype(np.int64)])
            out += self._popular(k - len(out), category=category, exclude=taken, avoid_categories=avoid_categories)
        return out

    def _candidates(
        self, rows: slice, picked: IntArray, *, followers: tuple[IntArray, IntArray] | None = None
    ) -> list[Suggestion]:
        """The stored candidates at positions ``picked`` of a customer's ``rows``, with their reasons; ``because``
        names only items of the ``followers`` pairs (by default, any of the customer's).

        Each array is read once for all of them (a request renders up to 50), not once per candidate.
        """
        a = self._a
        at = picked + rows.start
        items = a["cand_items"][at]
        reasons = a["cand_reason"][at].tolist()
        scores = a["cand_scores"][at].tolist()
        times = a["cand_times"][at].tolist()
        last = a["cand_last"][at].tolist()
        categories = self._cat_names(items)
        own = followers  # (own item, item following it), read when first needed
        out: list[Suggestion] = []
        for n, i in enumerate(items.tolist()):
            reason = _REASONS[reasons[n]]
            if reason == "repeat":
                out.append(
                    Suggestion(
                        self._skus[i], scores[n], reason, categories[n], times_bought=times[n], last_bought_at=last[n]
                    )
                )
                continue
            because: tuple[str, ...] = ()
            if reason == "bought_together":
                if own is None:
                    own = self._followed_by(self._own_items(rows))
                because = tuple(self._skus[x] for x in own[0][own[1] == i][:3].tolist())
            out.append(Suggestion(self._skus[i], scores[n], reason, categories[n], because=because))
        return out

    def _own_items(self, rows: slice) -> IntArray:
        """The items the customer bought, in their list's order."""
        a = self._a
        own: IntArray = a["cand_items"][rows][a["cand_reason"][rows] == 0].astype(np.int64)
        return own

    def _followed_by(self, own: IntArray) -> tuple[IntArray, IntArray]:
        """Pairs (x, y), as two arrays, of each of the customer's items x (in the given order) and each item y that
        most often follows x into a basket (the lists that seed the customer's new items)."""
        offsets = self._a["next_offsets"]
        lo, hi = offsets[own], offsets[own + 1]
        return np.repeat(own, hi - lo), self._a["next_items"][concat_ranges(lo, hi)]

    def recommend(
        self,
        customer_id: str | None,
        k: int,
        *,
        category: str | None = None,
        exclude: Collection[str] = (),
        kind: Kind = "mixed",
    ) -> list[Suggestion]:
        """Personal mix (buy-again, then items new to the customer) for a known customer, else popular items.

        ``kind="repeat"``: items the customer bought before only (none for an unknown customer); ``kind="new"``:
        items they never bought only, topped up with popular ones."""
        u = self._customer(customer_id)
        excl = self._item_ids(exclude)
        if u is None:
            return [] if kind == "repeat" else self._popular(k, category=category, exclude=excl)
        return self._from_candidates(u, k, category=category, exclude=excl, kind=kind)

    def recovery_offers(
        self,
        customer_id: str | None,
        k: int,
        *,
        avoid_skus: Collection[str] = (),
        avoid_categories: Collection[str] = (),
    ) -> list[Suggestion]:
        """Items the customer likes (or popular ones), never an avoided sku nor an item of an avoided category, and
        none of them named as the reason for another."""
        u = self._customer(customer_id)
        excl = self._item_ids(avoid_skus)
        if u is None:
            return self._popular(k, category=None, exclude=excl, avoid_categories=avoid_categories)
        return self._from_candidates(
            u, k, category=None, exclude=excl, avoid_categories=avoid_categories, name_avoided=False
        )

    def top_items(self, customer_ids: Sequence[str], k: int, kind: Kind = "mixed") -> IntArray:
        """(len(customer_ids), k) item indices (into the model's skus) of ``recommend`` without filters; -1 pads."""
        a = self._a
        u = np.array([self._customer_index.get(c, -1) for c in customer_ids], dtype=np.int64)
        known = u >= 0
        # The stored candidates of the kind asked for, and where each customer's start among them.
        entries = (
            np.arange(len(a["cand_items"]))
            if kind == "mixed"
            else np.flatnonzero((a["cand_reason"] == 0) == (kind == "repeat"))
        )
        first = np.searchsorted(entries, a["cand_offsets"])
        lo = np.where(known, first[np.maximum(u, 0)], 0)
        n = np.where(known, first[np.maximum(u, 0) + 1] - lo, 0)
        col = np.arange(k)
        take = col[None, :] < n[:, None]
        idx = np.where(take, entries[np.where(take, lo[:, None] + col[None, :], 0)] if len(entries) else 0, 0)
        personal = np.where(take, a["cand_items"][idx] if len(entries) else -1, -1).astype(np.int64)
        if kind == "repeat":
            return personal
        pop = a["pop_order"][: 2 * k].astype(np.int64)
        both = np.hstack([personal, np.broadcast_to(pop, (len(u), len(pop)))])
        # First k distinct items per row (popular top-up never repeats a personal item).
        dup = np.zeros(both.shape, dtype=bool)
        dup[:, k:] = (both[:, k:, None] == personal[:, None, :]).any(axis=2)
        keep = (both >= 0) & ~dup
        pos = np.argsort(~keep, axis=1, kind="stable")[:, :k]
        out = np.take_along_axis(np.where(keep, both, -1), pos, axis=1)
        out = np.hstack([out, np.full((len(u), k - out.shape[1]), -1, dtype=np.int64)])
        if kind == "new":  # known customers short of new items: their top-up skips what they bought, one by one
            for r in np.flatnonzero(known & (personal < 0).any(axis=1)).tolist():
                items = self._item_ids([s.sku for s in self.recommend(customer_ids[r], k, kind="new")])
                out[r] = np.concatenate([items, np.full(k - len(items), -1, dtype=np.int64)])
        return out

    def related(self, sku: str, k: int) -> list[Association]:
        """Items bought with ``sku`` (sku → other), best confidence × lift first; [] for an unknown sku."""
        i = self._item_index.get(sku)
        if i is None or k <= 0:
            return []
        a = self._a
        lo, hi = int(a["rel_offsets"][i]), int(a["rel_offsets"][i + 1])
        items, counts = a["rel_items"][lo:hi][:k], a["rel_counts"][lo:hi][:k]
        n, n_i = self.sizes["baskets"], int(a["item_count"][i])
        out = []
        for j, c in zip(items.tolist(), counts.tolist(), strict=True):
            conf = c / n_i
            out.append(Association((sku,), self._skus[j], int(c), c / n, conf, conf * n / int(a["item_count"][j])))
        return out

    def complete_basket(self, skus: Sequence[str], k: int, *, customer_id: str | None = None) -> list[Suggestion]:
        """Items bought with the cart's items (summed confidence × lift, boosted by the customer's own candidate
        score when known), never an item of the cart; topped up with personal then popular items."""
        if k <= 0:
            return []
        a = self._a
        cart = self._item_ids(skus)
        customer = self._customer(customer_id)
        out: list[Suggestion] = []
        if len(cart):
            spans = [(int(a["rel_offsets"][j]), int(a["rel_offsets"][j + 1])) for j in cart.tolist()]
            items = np.concatenate([a["rel_items"][lo:hi] for lo, hi in spans]).astype(np.int64)
            source = np.repeat(cart, [hi - lo for lo, hi in spans])
            counts = np.concatenate([a["rel_counts"][lo:hi] for lo, hi in spans]).astype(np.float64)
            conf = counts / a["item_count"][source]
            score = conf * conf * self.sizes["baskets"] / a["item_count"][items]
            keep = ~np.isin(items, cart)
            items, source, score = items[keep], source[keep], score[keep]
            uniq, inv = np.unique(items, return_inverse=True)
            total = np.bincount(inv, weights=score, minlength=len(uniq)).astype(np.float64)
            if customer is not None:
                rows = self._span("cand", customer)
                own = a["cand_items"][rows]
                hit = np.isin(uniq, own)
                if hit.any():
                    pos = np.argsort(own)
                    idx = pos[np.searchsorted(own[pos], uniq[hit])]
                    total[hit] *= 1.0 + a["cand_scores"][rows][idx]
            for u in np.argsort(-total, kind="stable")[:k].tolist():
                srcs = np.unique(source[inv == u])
                out.append(
                    Suggestion(
                        self._skus[int(uniq[u])],
                        float(total[u]),
                        "bought_together",
                        self._cat_name(int(uniq[u])),
                        because=tuple(self._skus[s] for s in srcs.tolist()),
                    )
                )
        if len(out) < k:
            taken = np.concatenate([cart, self._item_ids([s.sku for s in out])])
            if customer is not None:
                out += self._from_candidates(customer, k - len(out), category=None, exclude=taken)
            else:
                out += self._popular(k - len(out), category=None, exclude=taken)
        return out

    def rules(
        self,
        *,
        min_support: float,
        min_confidence: float,
        min_lift: float,
        sku: str | None = None,
        limit: int = 100,
    ) -> list[Association]:
        """Precomputed rules (itemsets up to ``rule_max_len``, at least ``rule_min_support`` and
        ``rule_min_confidence`` from Params) meeting the thresholds, optionally containing ``sku``; by lift."""
        t = self._rules
        ok = (t.support >= min_support) & (t.confidence >= min_confidence) & (t.lift >= min_lift)
        if sku is not None:
            i = self._item_index.get(sku)
            if i is None:
                return []
            ok &= (t.consequent == i) | (t.antecedent == i).any(axis=1)
        rows = np.flatnonzero(ok)
        order = rows[np.lexsort((-t.count[rows], -t.confidence[rows], -t.lift[rows]))][: max(limit, 0)]
        return table_associations(t, self._a["skus"], order)


def _personal_candidates(
    tx: Transactions, p: Params, conf_next: sp.csr_matrix, now: FloatArray
) -> dict[str, npt.NDArray[Any]]:
    """Per customer the top ``candidates`` items of each kind (CSR arrays, in the list's order): items bought before
    by buy-again probability, then items new to the customer by co-occurrence with their own (``conf_next``:
    confidence of each item's followers), every ``explore_every``-th slot holding a new one; and every item each
    customer bought (``bought_*``)."""
    n_cust, n_items = tx.n_customers, tx.n_items
    ranker = RankerParams(p.ranker_levels, p.ranker_rows, p.ranker_trees, p.ranker_learning_rate, p.ranker_leaves)
    bought = buy_again(tx, ranker, now=now, decay=p.basket_decay)
    _, rep = _top_per_row(bought.customer, bought.probability, n_cust, p.candidates)
    v = sp.csr_matrix((bought.decayed_frequency, (bought.customer, bought.item)), shape=(n_cust, n_items))
    pair_key = bought.customer * n_items + bought.item  # sorted
    new_cust: list[IntArray] = []
    new_item: list[IntArray] = []
    new_score: list[FloatArray] = []
    chunk = 20_000
    for lo in range(0, n_cust, chunk):
        hi = min(lo + chunk, n_cust)
        # Co-occurrence with the customer's top items: V-weighted mean of confidences, items not bought before.
        vc = sp.coo_matrix(v[lo:hi])
        seed_off, seed = _top_per_row(vc.row.astype(np.int64), vc.data, hi - lo, p.history_items)
        v_seed = sp.csr_matrix((vc.data[seed], vc.col[seed], seed_off), shape=(hi - lo, n_items))
        seed_sum = np.asarray(v_seed.sum(axis=1)).ravel()
        x = sp.csr_matrix(sp.diags(1.0 / np.maximum(seed_sum, 1e-12)) @ (v_seed @ conf_next))
        x.sort_indices()
        x = x.tocoo()
        rows, cols = x.row.astype(np.int64) + lo, x.col.astype(np.int64)
        fresh = ~sorted_contains(pair_key, rows * n_items + cols)
        rows, cols, vals = rows[fresh], cols[fresh], x.data[fresh].astype(np.float64)
        _, top = _top_per_row(rows - lo, vals, hi - lo, p.candidates)
        new_cust.append(rows[top])
        new_item.append(cols[top])
        new_score.append(vals[top])
    n_rep = len(rep)
    cust = np.concatenate([bought.customer[rep], *new_cust]).astype(np.int64)
    item = np.concatenate([bought.item[rep], *new_item]).astype(np.int64)
    score = np.concatenate([bought.probability[rep], *new_score]).astype(np.float64)
    repeat = np.arange(len(cust)) < n_rep
    times = np.concatenate([bought.times_bought[rep], np.zeros(len(cust) - n_rep, dtype=np.int64)])
    last = np.concatenate([bought.last_bought_at[rep], np.zeros(len(cust) - n_rep)])

    # Natural order within a customer: repeats by probability, then new items by co-occurrence (both parts are in
    # that order already, so a stable sort by customer merges them).
    order = np.argsort(cust, kind="stable")
    cust, item, score, repeat, times, last = (a[order] for a in (cust, item, score, repeat, times, last))
    starts = np.searchsorted(cust, np.arange(n_cust + 1))
    if p.explore_every > 0:
        cust, item, score, repeat, times, last = _explore_forward(
            p.explore_every, starts, cust, item, score, repeat, times, last
        )
    # All kept: the top ``candidates`` of each kind hold the list's top ``candidates`` and serve a row of one kind.
    return {
        "bought_offsets": np.concatenate(([0], np.cumsum(np.bincount(bought.customer, minlength=n_cust)))),
        "bought_items": bought.item.astype(np.int32),
        "cand_offsets": np.concatenate(([0], np.cumsum(np.bincount(cust, minlength=n_cust)))).astype(np.int64),
        "cand_items": item.astype(np.int32),
        "cand_scores": score.astype(np.float32),
        "cand_reason": np.where(repeat, 0, 1).astype(np.int8),
        "cand_times": times.astype(np.int32),
        "cand_last": last,
    }


def _explore_forward(every: int, starts: IntArray, cust: IntArray, *columns: npt.NDArray[Any]) -> list[Any]:
    """Reorder candidates (sorted by customer, in natural order; ``columns`` = item, score, repeat flag, times,
    last) so that the e-th new item (0-based) of a customer moves forward to slot (e + 1) · every − 1 when it
    would rank later. Sort key: the repeat items ranked before an entry, minus 0.5 for a new item (at most its
    forced slot)."""
    repeat = columns[2]
    rep_before = np.concatenate(([0], np.cumsum(repeat)))
    sort_key = (rep_before[:-1] - rep_before[starts[cust]]).astype(np.float64)
    new = ~repeat
    new_before = np.concatenate(([0], np.cumsum(new)))
    e = (new_before[:-1] - new_before[starts[cust]]).astype(np.float64)
    sort_key = np.where(new, np.minimum(sort_key, (e + 1) * every - 1 - e) - 0.5, sort_key)
    order = np.lexsort((np.arange(len(cust)), sort_key, cust))
    return [cust[order], *(c[order] for c in columns)]

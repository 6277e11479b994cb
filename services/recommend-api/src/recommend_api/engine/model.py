"""The recommendation model: built once from :class:`Transactions` with sparse matrix algebra, served from memory.

Build computes, without Python loops over order lines:

* popularity: per item Σ over its baskets of 0.5^(age / half-life), ordered overall and per category;
* co-occurrence: pair counts C = BᵀB of the binary basket × item matrix B; per item the top related items by
  confidence × lift; association rules (pairs and triples, :mod:`recommend_api.engine.rules`);
* a personal score per customer (TIFU-KNN-like, Hu et al. SIGIR 2020): V = position-decayed basket frequency
  (basket j of n weighs ``basket_decay``^(n-1-j), normalised so V ∈ [0, 1]); neighbours N(u) = most cosine-similar
  customers on V (searched within the most active ``neighbour_pool`` customers, in chunks; each contributes its
  top ``neighbour_items``); co-occurrence X(u, i) = Σ_j V(u, j) · confidence(j → i) / Σ_j V(u, j) over the
  customer's top ``history_items`` items j and their stored related items.
  Score = α·V + (1 − α)·(β·mean_{N(u)} V + (1 − β)·X); every ``explore_every``-th slot holds the best item new to
  the customer unless one already ranks there. Reasons: "repeat" for items bought before, "bought_together" for
  new items with X > 0, "popular" for new items only neighbours bought.
  The top ``candidates`` items per customer are stored (CSR layout), so a request is a slice and a filter.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

from recommend_api.engine.data import Transactions
from recommend_api.engine.rules import Association, RuleTable, mine_rule_table, table_associations

__all__ = ["Association", "Model", "Params", "Suggestion"]

Reason = Literal["repeat", "bought_together", "popular"]
_REASONS: tuple[Reason, ...] = ("repeat", "bought_together", "popular")
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

    Settings were compared on the last basket and checked on a validation split (second-to-last basket as truth,
    last basket removed), keeping the simplest setting within noise (±0.005 recall@10 at 593 customers) of the best
    on both. Recall@10 there: 0.384 (test) / 0.383 (validation) vs 0.356 for personal top frequency.

    basket_decay: weight ratio between consecutive baskets of a customer in V (0.9; 0.95 loses 0.007).
    personal_weight: α, share of the customer's own history in the score (0.6–0.8 are equivalent).
    neighbour_weight: β, share of neighbours in the non-personal part, the rest being basket co-occurrence
        (1.0 scores within noise; 0.7 keeps co-occurrence, which explains suggestions as bought together).
    neighbours: customers averaged as neighbours (50; 20 loses 0.004, 100–300 gain nothing).
    neighbour_items: a neighbour contributes its top this many items.
    history_items: the customer's top this many items seed co-occurrence.
    neighbour_pool: neighbours are searched among this many most active customers (bounds build time on big data).
    explore_every: every n-th slot shows the best item the customer never bought (0 = off). Off by default: one
        slot in ten costs 0.02 recall@10 for 0.007 explore recall on Instacart, where next baskets are mostly
        repeats; worth enabling where discovery matters more than hit rate.
    candidates: items stored per customer for serving.
    related_per_item: related items stored per item (ranked by confidence × lift).
    min_pair_count: baskets two items must share to be related.
    popularity_half_life_days: a purchase this old counts half for popularity.
    rule_min_support, rule_min_confidence, rule_max_len: thresholds of the rules precomputed for ``Model.rules``.
    max_rules: rules kept (highest lift first).
    """

    basket_decay: float = 0.9
    personal_weight: float = 0.7
    neighbour_weight: float = 0.7
    neighbours: int = 50
    neighbour_items: int = 20
    history_items: int = 10
    neighbour_pool: int = 2000
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


def _top_per_row(rows: IntArray, cols: IntArray, scores: FloatArray, n_rows: int, k: int) -> tuple[IntArray, IntArray]:
    """CSR offsets, and the positions (into the inputs) of each row's ``k`` best entries (ties: lower column)."""
    order = np.lexsort((cols, -scores, rows))
    starts = np.searchsorted(rows[order], np.arange(n_rows + 1))
    rank = np.arange(len(order)) - starts[rows[order]]
    selected = order[rank < k]
    counts = np.bincount(rows[selected], minlength=n_rows)
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64), selected


def _best_per_row_and_side(rows: IntArray, scores: FloatArray, side: npt.NDArray[np.bool_], k: int) -> IntArray:
    """Sorted positions of the ``k`` highest ``scores`` per row among entries where ``side`` holds, and likewise
    among entries where it does not (scores in [0, 1]; ties: lower position).

    One stable sort by (row, −score) serves both sides: an entry's rank on its side is the number of same-side
    entries before it in its row, read off running counts.
    """
    order = np.argsort(rows * 4.0 - scores, kind="stable")
    r, s = rows[order], side[order]
    first = np.concatenate(([True], r[1:] != r[:-1])) if len(r) else np.zeros(0, bool)
    start = np.maximum.accumulate(np.where(first, np.arange(len(r)), 0))
    on_side_before: IntArray = np.cumsum(s) - s
    off_side_before = np.arange(len(r)) - on_side_before
    rank = np.where(s, on_side_before - on_side_before[start], off_side_before - off_side_before[start])
    return np.sort(order[rank < k])


def _normalise_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ m)


class Model:
    """In-memory recommendation model; every query is a few slices of flat numpy arrays."""

    def __init__(self, arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> None:
        self._a = arrays
        self.sizes: dict[str, int] = {k: int(v) for k, v in meta["sizes"].items()}
        self.built_at: float = float(meta["built_at"])
        self.params = Params(**meta["params"])
        self._skus: list[str] = arrays["skus"].tolist()
        self._categories: list[str] = arrays["categories"].tolist()
        self._item_index = {s: i for i, s in enumerate(self._skus)}
        self._customer_index = {c: i for i, c in enumerate(arrays["customer_ids"].tolist())}
        self._category_index = {c: i for i, c in enumerate(self._categories)}
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
    def build(cls, tx: Transactions, params: Params | None = None, *, now: float | None = None) -> Model:
        """Build every precomputed structure from ``tx``; ``now`` (default: current time) anchors recency."""
        p = params or Params()
        now = time.time() if now is None else float(now)
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
        co = sp.coo_matrix(b.T @ b)
        off_diag = (co.row != co.col) & (co.data >= p.min_pair_count - 0.5)
        r, c = co.row[off_diag].astype(np.int64), co.col[off_diag].astype(np.int64)
        cnt = np.rint(co.data[off_diag]).astype(np.int64)
        del co
        conf = cnt / item_count[r]
        lift = conf * n_baskets / item_count[c]
        rel_off, kept = _top_per_row(r, c, conf * lift, n_items, p.related_per_item)
        a["rel_offsets"], a["rel_items"], a["rel_counts"] = rel_off, c[kept].astype(np.int32), cnt[kept]
        conf_top = sp.csr_matrix((conf[kept], (r[kept], c[kept])), shape=(n_items, n_items))
        n_pairs = int(len(cnt) // 2)
        del r, c, cnt, conf, lift, kept

        # Personal model.
        a.update(_personal_candidates(tx, p, conf_top))

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
        return np.array([self._item_index[s] for s in skus if s in self._item_index], dtype=np.int64)

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
            ok &= item_cat == self._category_index.get(category, -2)
        avoid = [self._category_index[c] for c in avoid_categories if c in self._category_index]
        if avoid:
            ok &= ~np.isin(item_cat, avoid)
        return np.asarray(ok)

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
            c = self._category_index.get(category)
            if c is None:
                return []
            pool = self._a["cat_items"][self._a["cat_offsets"][c] : self._a["cat_offsets"][c + 1]]
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

    def _customer_slice(self, customer_id: str | None) -> slice | None:
        u = self._customer_index.get(customer_id) if customer_id is not None else None
        if u is None:
            return None
        off = self._a["cand_offsets"]
        return slice(int(off[u]), int(off[u + 1]))

    def _from_candidates(
        self,
        rows: slice,
        k: int,
        *,
        category: str | None,
        exclude: IntArray,
        avoid_categories: Collection[str] = (),
    ) -> list[Suggestion]:
        items = self._a["cand_items"][rows]
        if len(exclude) > 0 or category is not None or len(avoid_categories) > 0:
            ok = self._allowed(
                items.astype(np.int64), category=category, exclude=exclude, avoid_categories=avoid_categories
            )
            picked = np.flatnonzero(ok)[:k]
        else:  # nothing to filter out: the stored order is the answer
            picked = np.arange(len(items))[:k]
        out = self._candidates(rows, picked)
        if len(out) < k:
            taken = np.concatenate([exclude, items[picked].astype(np.int64)])
            out += self._popular(k - len(out), category=category, exclude=taken, avoid_categories=avoid_categories)
        return out

    def _candidates(self, rows: slice, picked: IntArray) -> list[Suggestion]:
        """The stored candidates at positions ``picked`` of a customer's ``rows``, with their reasons.

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
        own: list[int] | None = None  # the customer's repeat items, in stored order, read when first needed
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
                    own = a["cand_items"][rows][a["cand_reason"][rows] == 0].tolist()
                related = set(a["rel_items"][a["rel_offsets"][i] : a["rel_offsets"][i + 1]].tolist())
                because = tuple(self._skus[x] for x in own if x in related)[:3]
            out.append(Suggestion(self._skus[i], scores[n], reason, categories[n], because=because))
        return out

    def recommend(
        self, customer_id: str | None, k: int, *, category: str | None = None, exclude: Collection[str] = ()
    ) -> list[Suggestion]:
        """Personal mix (buy-again, then items new to the customer) for a known customer, else popular items."""
        rows = self._customer_slice(customer_id)
        excl = self._item_ids(exclude)
        if rows is None:
            return self._popular(k, category=category, exclude=excl)
        return self._from_candidates(rows, k, category=category, exclude=excl)

    def recovery_offers(
        self,
        customer_id: str | None,
        k: int,
        *,
        avoid_skus: Collection[str] = (),
        avoid_categories: Collection[str] = (),
    ) -> list[Suggestion]:
        """Items the customer likes (or popular ones), never an avoided sku nor an item of an avoided category."""
        rows = self._customer_slice(customer_id)
        excl = self._item_ids(avoid_skus)
        if rows is None:
            return self._popular(k, category=None, exclude=excl, avoid_categories=avoid_categories)
        return self._from_candidates(rows, k, category=None, exclude=excl, avoid_categories=avoid_categories)

    def top_items(self, customer_ids: Sequence[str], k: int) -> IntArray:
        """(len(customer_ids), k) item indices (into the model's skus) of ``recommend`` without filters; -1 pads."""
        a = self._a
        off = a["cand_offsets"]
        u = np.array([self._customer_index.get(c, -1) for c in customer_ids], dtype=np.int64)
        known = u >= 0
        lo = np.where(known, off[np.maximum(u, 0)], 0)
        n = np.where(known, off[np.maximum(u, 0) + 1] - lo, 0)
        col = np.arange(k)
        take = col[None, :] < n[:, None]
        idx = np.where(take, lo[:, None] + col[None, :], 0)
        personal = np.where(take, a["cand_items"][idx] if len(a["cand_items"]) else -1, -1).astype(np.int64)
        pop = a["pop_order"][: 2 * k].astype(np.int64)
        both = np.hstack([personal, np.broadcast_to(pop, (len(u), len(pop)))])
        # First k distinct items per row (popular top-up never repeats a personal item).
        dup = np.zeros(both.shape, dtype=bool)
        dup[:, k:] = (both[:, k:, None] == personal[:, None, :]).any(axis=2)
        keep = (both >= 0) & ~dup
        pos = np.argsort(~keep, axis=1, kind="stable")[:, :k]
        out = np.take_along_axis(np.where(keep, both, -1), pos, axis=1)
        return np.hstack([out, np.full((len(u), k - out.shape[1]), -1, dtype=np.int64)])

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
        a = self._a
        cart = self._item_ids(skus)
        if k <= 0:
            return []
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
            rows = self._customer_slice(customer_id)
            if rows is not None:
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
            rows = self._customer_slice(customer_id)
            if rows is not None:
                out += self._from_candidates(rows, k - len(out), category=None, exclude=taken)
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


def _personal_candidates(tx: Transactions, p: Params, conf_top: sp.csr_matrix) -> dict[str, npt.NDArray[Any]]:
    """Per customer the top ``candidates`` items by personal score, with reasons and purchase stats (CSR arrays).

    Customers are processed in chunks, so the dense similarity block and the sparse score block stay bounded.
    """
    n_cust, n_items = tx.n_customers, tx.n_items
    offsets = tx.customer_basket_offsets()
    last_pos = offsets[tx.basket_customer.astype(np.int64) + 1] - 1
    basket_w = p.basket_decay ** (last_pos - np.arange(tx.n_baskets)).astype(np.float64)
    norm = np.bincount(tx.basket_customer, weights=basket_w, minlength=n_cust)
    line_cust = tx.basket_customer[tx.line_basket].astype(np.int64)
    ukey, inv = np.unique(line_cust * n_items + tx.line_item, return_inverse=True)
    del line_cust
    pair_cust, pair_item = ukey // n_items, ukey % n_items
    dec = np.bincount(inv, weights=basket_w[tx.line_basket], minlength=len(ukey)) / norm[pair_cust]
    times = np.bincount(inv, minlength=len(ukey)).astype(np.int64)
    last = np.full(len(ukey), -np.inf)
    np.maximum.at(last, inv, tx.basket_time[tx.line_basket])
    del inv
    v = sp.csr_matrix((dec, (pair_cust, pair_item)), shape=(n_cust, n_items))

    pool = np.sort(np.argsort(-np.diff(offsets), kind="stable")[: p.neighbour_pool])
    vn = _normalise_rows(v)
    pool_t = sp.csr_matrix(vn[pool].T)
    pool_v = sp.coo_matrix(v[pool])
    pool_off, top = _top_per_row(
        pool_v.row.astype(np.int64), pool_v.col.astype(np.int64), pool_v.data, len(pool), p.neighbour_items
    )
    v_pool = sp.csr_matrix((pool_v.data[top], pool_v.col[top], pool_off), shape=(len(pool), n_items))
    del pool_v, top
    k_nb = min(p.neighbours, max(len(pool) - 1, 0))
    alpha, beta = p.personal_weight, p.neighbour_weight
    parts: list[dict[str, npt.NDArray[Any]]] = []
    chunk = max(1, min(n_cust, 10_000_000 // max(len(pool), 1), 20_000))
    for lo in range(0, n_cust, chunk):
        hi = min(lo + chunk, n_cust)
        v_c = v[lo:hi]
        # Co-occurrence with the customer's top items: V-weighted mean of confidences.
        vc = sp.coo_matrix(v_c)
        seed_off, seed = _top_per_row(
            vc.row.astype(np.int64), vc.col.astype(np.int64), vc.data, hi - lo, p.history_items
        )
        v_seed = sp.csr_matrix((vc.data[seed], vc.col[seed], seed_off), shape=(hi - lo, n_items))
        seed_sum = np.asarray(v_seed.sum(axis=1)).ravel()
        x_c = sp.csr_matrix(sp.diags(1.0 / np.maximum(seed_sum, 1e-12)) @ (v_seed @ conf_top))
        if k_nb > 0:
            sim = (vn[lo:hi] @ pool_t).toarray()
            cust = np.arange(lo, hi)
            col = np.minimum(np.searchsorted(pool, cust), len(pool) - 1)
            is_self = pool[col] == cust
            sim[np.flatnonzero(is_self), col[is_self]] = -np.inf
            nb = np.argpartition(-sim, k_nb - 1, axis=1)[:, :k_nb]
            del sim
            w = sp.csr_matrix(
                (np.full(nb.size, 1.0 / k_nb), (np.repeat(np.arange(hi - lo), k_nb), nb.ravel())),
                shape=(hi - lo, len(pool)),
            )
            others = sp.csr_matrix(beta * (w @ v_pool) + (1 - beta) * x_c)
        else:
            others = sp.csr_matrix((1 - beta) * x_c)
        scores = sp.csr_matrix(alpha * v_c + (1 - alpha) * others)
        lo_pair, hi_pair = np.searchsorted(pair_cust, [lo, hi])
        parts.append(
            _candidates(
                p,
                n_items,
                lo,
                scores,
                x_c,
                pair_cust[lo_pair:hi_pair],
                pair_item[lo_pair:hi_pair],
                times[lo_pair:hi_pair],
                last[lo_pair:hi_pair],
            )
        )
    if not parts:
        none = np.zeros(0, dtype=np.int64)
        empty = sp.csr_matrix((0, n_items))
        parts.append(_candidates(p, n_items, 0, empty, empty, none, none, none, np.zeros(0)))
    out = {k: np.concatenate([part[k] for part in parts]) for k in parts[0] if k != "cand_counts"}
    counts = np.concatenate([part["cand_counts"] for part in parts])
    out["cand_offsets"] = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return out


def _candidates(
    p: Params,
    n_items: int,
    first_customer: int,
    scores: sp.csr_matrix,
    together: sp.csr_matrix,
    pair_cust: IntArray,
    pair_item: IntArray,
    pair_times: IntArray,
    pair_last: FloatArray,
) -> dict[str, npt.NDArray[Any]]:
    """Top ``candidates`` of each row of a chunk of customers (row r = customer ``first_customer + r``)."""
    n_cust = scores.shape[0]
    coo = scores.tocoo()
    rows, cols, vals = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float64)
    key = (rows + first_customer) * n_items + cols
    pair_key = pair_cust * n_items + pair_item
    pos = np.clip(np.searchsorted(pair_key, key), 0, max(len(pair_key) - 1, 0))
    repeat = pair_key[pos] == key if len(pair_key) else np.zeros(len(key), bool)
    # Only the best ``candidates`` bought and new items of each row can be kept.
    sel = _best_per_row_and_side(rows, vals, repeat, p.candidates)
    rows, cols, vals, repeat, pos = rows[sel], cols[sel], vals[sel], repeat[sel], pos[sel]
    # Natural order within customer by score; the e-th item new to the customer (0-based) moves forward to slot
    # (e + 1) · explore_every − 1 when it would rank later: sort key = repeat items ranked before it (− 0.5 if new).
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals, repeat, pos = rows[order], cols[order], vals[order], repeat[order], pos[order]
    starts = np.searchsorted(rows, np.arange(n_cust + 1))
    rep_before = np.concatenate(([0], np.cumsum(repeat)))
    sort_key = (rep_before[:-1] - rep_before[starts[rows]]).astype(np.float64)
    new = ~repeat
    new_before = np.concatenate(([0], np.cumsum(new)))
    e = (new_before[:-1] - new_before[starts[rows]]).astype(np.float64)
    forced = (e + 1) * p.explore_every - 1 - e if p.explore_every > 0 else np.inf
    sort_key = np.where(new, np.minimum(sort_key, forced) - 0.5, sort_key)
    order = np.lexsort((np.arange(len(rows)), sort_key, rows))
    rows, cols, vals, repeat, pos = rows[order], cols[order], vals[order], repeat[order], pos[order]
    rank2 = np.arange(len(rows)) - starts[rows]
    keep = rank2 < p.candidates
    rows, cols, vals, repeat, pos = rows[keep], cols[keep], vals[keep], repeat[keep], pos[keep]
    counts = np.bincount(rows, minlength=n_cust)
    # Explore items: bought_together when co-occurring with one of the customer's items, else popular (neighbours).
    tog = together.tocoo()
    tog_key = np.sort(tog.row.astype(np.int64) * n_items + tog.col)
    key = rows * n_items + cols
    tpos = np.clip(np.searchsorted(tog_key, key), 0, max(len(tog_key) - 1, 0))
    is_together = tog_key[tpos] == key if len(tog_key) else np.zeros(len(key), bool)
    reason = np.where(repeat, 0, np.where(is_together, 1, 2)).astype(np.int8)
    return {
        "cand_counts": counts,
        "cand_items": cols.astype(np.int32),
        "cand_scores": vals.astype(np.float32),
        "cand_reason": reason,
        "cand_times": np.where(repeat, pair_times[pos], 0).astype(np.int32),
        "cand_last": np.where(repeat, pair_last[pos], 0.0),
    }

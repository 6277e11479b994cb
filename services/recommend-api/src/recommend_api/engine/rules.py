"""Association rules with one consequent item (A → c, |A| ≤ 2) mined with sparse matrix products.

Frequent items need ``count ≥ ceil(min_support · n_baskets)`` (the same rounding as mlxtend's fpgrowth); with
B the binary basket × item matrix restricted to frequent items, pair counts are BᵀB, and triple counts are PᵀB where
P is the basket × frequent-pair indicator. Every subset of a frequent itemset is frequent, so each rule's antecedent
count is known. Measures: support = count(A ∪ c) / n_baskets, confidence = count(A ∪ c) / count(A),
lift = confidence / (count(c) / n_baskets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

from recommend_api.engine.data import Transactions


@dataclass(frozen=True)
class RuleTable:
    """Rules as parallel arrays; ``antecedent[:, 1] == -1`` for one-item antecedents. Items index ``tx.skus``."""

    antecedent: npt.NDArray[np.int32]
    consequent: npt.NDArray[np.int32]
    count: npt.NDArray[np.int64]
    antecedent_count: npt.NDArray[np.int64]
    consequent_count: npt.NDArray[np.int64]
    n_baskets: int

    def __len__(self) -> int:
        return len(self.consequent)

    @property
    def support(self) -> npt.NDArray[np.float64]:
        return self.count / max(self.n_baskets, 1)

    @property
    def confidence(self) -> npt.NDArray[np.float64]:
        return self.count / np.maximum(self.antecedent_count, 1)

    @property
    def lift(self) -> npt.NDArray[np.float64]:
        return self.confidence / np.maximum(self.consequent_count / max(self.n_baskets, 1), 1e-300)


def _ragged_pairs(indptr: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """All (x, y) positions with x < y inside the same CSR row, for rows delimited by ``indptr``."""
    sizes = np.diff(indptr)
    row = np.repeat(np.arange(len(sizes)), sizes)
    lines = np.arange(int(indptr[-1]), dtype=np.int64)
    partners = indptr[row + 1] - 1 - lines
    left = np.repeat(lines, partners)
    first = np.repeat(np.cumsum(partners) - partners, partners)
    right = left + 1 + (np.arange(len(left), dtype=np.int64) - first)
    return left, right


def mine_rule_table(
    tx: Transactions, *, min_support: float, min_confidence: float, min_lift: float = 0.0, max_len: int = 3
) -> RuleTable:
    """Rules of itemsets of length 2 to ``max_len`` (at most 3) meeting all three thresholds."""
    n = tx.n_baskets
    empty = np.zeros(0, dtype=np.int64)
    if n == 0 or max_len < 2:
        return RuleTable(np.zeros((0, 2), np.int32), empty.astype(np.int32), empty, empty, empty, n)
    min_count = max(math.ceil(min_support * n), 1)
    b_full = tx.basket_item_matrix()
    item_count = np.bincount(tx.line_item, minlength=tx.n_items).astype(np.int64)
    freq = np.flatnonzero(item_count >= min_count)
    b = b_full[:, freq].tocsr()
    b.sort_indices()

    pairs = sp.triu(b.T @ b, k=1).tocoo()
    keep = pairs.data >= min_count - 0.5
    pa, pb = pairs.row[keep].astype(np.int64), pairs.col[keep].astype(np.int64)
    pc = np.rint(pairs.data[keep]).astype(np.int64)
    order = np.lexsort((pb, pa))
    pa, pb, pc = pa[order], pb[order], pc[order]
    nf = len(freq)

    ante: list[npt.NDArray[np.int64]] = [
        np.stack([pa, np.full_like(pa, -1)], 1),
        np.stack([pb, np.full_like(pb, -1)], 1),
    ]
    cons: list[npt.NDArray[np.int64]] = [pb, pa]
    cnt: list[npt.NDArray[np.int64]] = [pc, pc]
    acnt: list[npt.NDArray[np.int64]] = [item_count[freq[pa]], item_count[freq[pb]]]

    if max_len >= 3 and len(pa):
        pair_key = pa * nf + pb
        # Basket × frequent-pair indicator from the pairs of frequent items inside each basket.
        sizes = np.diff(b.indptr).astype(np.int64)
        left, right = _ragged_pairs(b.indptr.astype(np.int64))
        key = b.indices[left].astype(np.int64) * nf + b.indices[right]
        pos = np.clip(np.searchsorted(pair_key, key), 0, len(pair_key) - 1)
        hit = pair_key[pos] == key
        basket_of = np.repeat(np.arange(n, dtype=np.int64), sizes)[left[hit]]
        p = sp.csr_matrix((np.ones(int(hit.sum()), np.float32), (basket_of, pos[hit])), shape=(n, len(pair_key)))
        t = (p.T @ b).tocoo()
        third = t.col.astype(np.int64)
        keep3 = (t.data >= min_count - 0.5) & (third > pb[t.row])
        ti, tc = t.row[keep3].astype(np.int64), third[keep3]
        ta, tb = pa[ti], pb[ti]
        tcount = np.rint(t.data[keep3]).astype(np.int64)

        def pair_count(x: npt.NDArray[np.int64], y: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            return np.asarray(pc[np.searchsorted(pair_key, x * nf + y)], dtype=np.int64)

        for (x, y), z in (((ta, tb), tc), ((ta, tc), tb), ((tb, tc), ta)):
            ante.append(np.stack([x, y], 1))
            cons.append(z)
            cnt.append(tcount)
            acnt.append(pair_count(x, y))

    a = np.concatenate(ante)
    c = np.concatenate(cons)
    k = np.concatenate(cnt)
    ak = np.concatenate(acnt)
    ck = item_count[freq[c]]
    conf = k / ak
    lift = conf / (ck / n)
    ok = (conf >= min_confidence) & (lift >= min_lift)
    a_items = np.where(a[ok] >= 0, freq[np.maximum(a[ok], 0)], -1).astype(np.int32)
    return RuleTable(
        antecedent=a_items,
        consequent=freq[c[ok]].astype(np.int32),
        count=k[ok],
        antecedent_count=ak[ok],
        consequent_count=ck[ok],
        n_baskets=n,
    )


def mine_rules(
    tx: Transactions, *, min_support: float, min_confidence: float, min_lift: float = 0.0, max_len: int = 3
) -> list[Association]:
    """Rules A → c with |A ∪ {c}| ≤ ``max_len`` (≤ 3), as :class:`Association` objects, by lift then confidence."""
    table = mine_rule_table(
        tx, min_support=min_support, min_confidence=min_confidence, min_lift=min_lift, max_len=max_len
    )
    return table_associations(table, tx.skus, np.arange(len(table)))


def table_associations(table: RuleTable, skus: npt.NDArray[np.str_], rows: npt.NDArray[np.int64]) -> list[Association]:
    """``Association`` objects for the given rows, sorted by lift, then confidence, then count (descending)."""
    lift, conf, support = table.lift, table.confidence, table.support
    order = rows[np.lexsort((-table.count[rows], -conf[rows], -lift[rows]))]
    out: list[Association] = []
    for r in order.tolist():
        a0, a1 = int(table.antecedent[r, 0]), int(table.antecedent[r, 1])
        ante = (str(skus[a0]),) if a1 < 0 else tuple(sorted((str(skus[a0]), str(skus[a1]))))
        out.append(
            Association(
                antecedent=ante,
                consequent=str(skus[table.consequent[r]]),
                count=int(table.count[r]),
                support=float(support[r]),
                confidence=float(conf[r]),
                lift=float(lift[r]),
            )
        )
    return out


@dataclass(frozen=True)
class Association:
    """A rule antecedent → consequent with its basket counts and measures."""

    antecedent: tuple[str, ...]
    consequent: str
    count: int
    support: float
    confidence: float
    lift: float

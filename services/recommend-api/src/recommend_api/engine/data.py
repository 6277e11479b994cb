"""Purchase lines as integer-indexed numpy arrays: the one input every model and evaluation in the engine reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

ArrayLike = Sequence[Any] | npt.NDArray[Any]


def _codes(values: ArrayLike) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    """Sorted unique values (as an object array of str) and each input's index into them.

    Strings are hashed to uint64 column by column (a loop over character positions, not over values), made unique
    as integers, checked for collisions, and only the distinct values are sorted: far faster than sorting
    millions of strings.
    """
    arr = np.asarray(values)
    if arr.dtype == object:
        arr = arr.astype(str)
    if arr.dtype.kind != "U" or arr.size == 0 or arr.dtype.itemsize == 0:
        uniq, inverse = np.unique(arr, return_inverse=True)
        return uniq.astype(str).astype(object), inverse.astype(np.int64).ravel()
    arr = np.ascontiguousarray(arr.ravel())
    chars = arr.view(np.uint32).reshape(len(arr), -1)
    h = np.zeros(len(arr), dtype=np.uint64)
    for j in range(chars.shape[1]):
        h *= np.uint64(1_000_003)
        h += chars[:, j]
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    reps = arr[first]
    if not np.array_equal(reps[inv], arr):
        uniq, inverse = np.unique(arr, return_inverse=True)
        return uniq.astype(object), inverse.astype(np.int64).ravel()
    order = np.argsort(reps)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return reps[order].astype(object), rank[inv.ravel()]


@dataclass(frozen=True)
class Transactions:
    """Baskets of items per customer; index spaces are positions in ``customer_ids``, ``skus`` and ``categories``.

    Baskets are sorted by (customer, time), so each customer's baskets are one contiguous run; lines are sorted by
    (basket, item) with at most one line per (basket, item).
    """

    customer_ids: npt.NDArray[Any]
    skus: npt.NDArray[Any]
    categories: npt.NDArray[Any]
    item_category: npt.NDArray[np.int32]
    basket_customer: npt.NDArray[np.int32]
    basket_time: npt.NDArray[np.float64]
    basket_order_ids: npt.NDArray[Any]
    line_basket: npt.NDArray[np.int32]
    line_item: npt.NDArray[np.int32]
    line_quantity: npt.NDArray[np.float32]

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def n_items(self) -> int:
        return len(self.skus)

    @property
    def n_baskets(self) -> int:
        return len(self.basket_customer)

    @property
    def n_lines(self) -> int:
        return len(self.line_item)

    @classmethod
    def from_lines(
        cls,
        *,
        customer_id: ArrayLike,
        order_id: ArrayLike,
        sku: ArrayLike,
        category: ArrayLike,
        purchased_at: ArrayLike,
        quantity: ArrayLike | None = None,
    ) -> Transactions:
        """Build from equal-length per-line sequences (vectorised, ``np.unique`` with ``return_inverse``).

        An order is one basket (its customer and time are taken from its first line); duplicate (order, sku) lines
        are summed; a category of None or '' is unknown; an item's category is the one on its most recent line that
        has one.
        """
        n = len(sku)
        if not (len(customer_id) == len(order_id) == len(category) == len(purchased_at) == n):
            raise ValueError("from_lines: all per-line sequences must have the same length")
        if quantity is not None and len(quantity) != n:
            raise ValueError("from_lines: quantity must have one value per line")
        customer_ids, cust = _codes(customer_id)
        skus, item = _codes(sku)
        order_ids, order = _codes(order_id)
        time = np.asarray(purchased_at, dtype=np.float64).ravel()
        qty = np.ones(n, np.float32) if quantity is None else np.asarray(quantity, dtype=np.float32).ravel()

        # Per order: customer and time of its first line.
        first = np.full(len(order_ids), n, dtype=np.int64)
        np.minimum.at(first, order, np.arange(n, dtype=np.int64))
        o_cust, o_time = cust[first], time[first]
        perm = np.lexsort((np.arange(len(order_ids)), o_time, o_cust))
        rank = np.empty_like(perm)
        rank[perm] = np.arange(len(perm))
        basket = rank[order]

        # One line per (basket, item), quantities summed; sorted by (basket, item).
        key = basket * len(skus) + item
        ukey, kinv = np.unique(key, return_inverse=True)
        line_qty = np.bincount(kinv.ravel(), weights=qty, minlength=len(ukey)).astype(np.float32)

        # Item category: the most recent known one.
        cat = np.asarray(category, dtype=object).ravel()
        known = np.flatnonzero((cat != None) & (cat != ""))  # noqa: E711 - elementwise comparison on an object array
        item_category = np.full(len(skus), -1, dtype=np.int32)
        if len(known):
            categories, cat_code = _codes(cat[known].astype(str))
            o = np.lexsort((known, time[known], item[known]))
            items_sorted = item[known][o]
            is_last = np.append(items_sorted[1:] != items_sorted[:-1], True)
            item_category[items_sorted[is_last]] = cat_code[o][is_last].astype(np.int32)
        else:
            categories = np.array([], dtype=object)

        return cls(
            customer_ids=customer_ids,
            skus=skus,
            categories=categories,
            item_category=item_category,
            basket_customer=o_cust[perm].astype(np.int32),
            basket_time=o_time[perm],
            basket_order_ids=order_ids[perm],
            line_basket=(ukey // len(skus)).astype(np.int32),
            line_item=(ukey % len(skus)).astype(np.int32),
            line_quantity=line_qty,
        )

    def basket_item_matrix(self) -> sp.csr_matrix:
        """Binary basket × item CSR matrix (float32)."""
        return sp.csr_matrix(
            (np.ones(self.n_lines, np.float32), (self.line_basket, self.line_item)),
            shape=(self.n_baskets, self.n_items),
        )

    def customer_basket_offsets(self) -> npt.NDArray[np.int64]:
        """CSR-style offsets: customer c's baskets are ``offsets[c]:offsets[c + 1]``."""
        counts = np.bincount(self.basket_customer, minlength=self.n_customers)
        return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)

    def subset_baskets(self, keep: npt.NDArray[np.bool_]) -> Transactions:
        """The same index spaces (customers, items, categories) restricted to the baskets where ``keep`` is true."""
        new_index = np.cumsum(keep) - 1
        line_keep = keep[self.line_basket]
        return Transactions(
            customer_ids=self.customer_ids,
            skus=self.skus,
            categories=self.categories,
            item_category=self.item_category,
            basket_customer=self.basket_customer[keep],
            basket_time=self.basket_time[keep],
            basket_order_ids=self.basket_order_ids[keep],
            line_basket=new_index[self.line_basket[line_keep]].astype(np.int32),
            line_item=self.line_item[line_keep],
            line_quantity=self.line_quantity[line_keep],
        )


def sorted_contains(sorted_keys: npt.NDArray[np.int64], keys: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Whether each of ``keys`` is in the sorted array ``sorted_keys``."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    pos = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
    return np.asarray(sorted_keys[pos] == keys)


def concat_ranges(lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Concatenation of ``arange(lo[k], hi[k])`` for every k."""
    lengths = hi - lo
    if lengths.sum() == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    return np.arange(ends[-1], dtype=np.int64) - np.repeat(ends - lengths - lo, lengths)

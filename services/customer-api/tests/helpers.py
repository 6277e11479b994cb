"""Small builders the tests share."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

_phones = itertools.count(13800000000)
_orders = itertools.count(1)


def next_phone() -> str:
    return str(next(_phones))


def next_order_id() -> str:
    return f"POS-{next(_orders):08d}"


async def create_customer(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "张伟", "phone": next_phone(), **fields}
    response = await client.post("/v1/customers", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def order(
    customer_id: str,
    *,
    order_id: str | None = None,
    purchased_at: str = "2026-10-01T09:30:00+08:00",
    items: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "order_id": order_id or next_order_id(),
        "customer_id": customer_id,
        "purchased_at": purchased_at,
        "channel": "store",
        "store_id": "SH-001",
        "items": items
        or [
            {"sku": "6901234567890", "name": "花生油 5L", "category": "粮油", "quantity": "1", "unit_price": "89.90"},
            {"sku": "6909876543210", "name": "纯牛奶", "category": "乳品", "quantity": "2", "unit_price": "59.50"},
        ],
    }

"""Bodies of orders, bulk intake results and the purchase feed. Money is a decimal string."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainSerializer, StringConstraints, field_validator

from crm_kit.schemas import DecimalText, Documented, Money, RequestModel, ResponseModel, Timestamp

Channel = Literal["store", "online", "app", "wechat", "phone", "other"]
Quantity = Annotated[Decimal, PlainSerializer(lambda v: format(v.normalize(), "f"), return_type=str)]

EXAMPLE_ORDER = {
    "order_id": "POS-20261123-000123",
    "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
    "purchased_at": "2026-11-23T10:15:00+08:00",
    "channel": "store",
    "store_id": "SH-JA-001",
    "currency": "CNY",
    "items": [
        {"sku": "6901234567890", "name": "金龙鱼花生油 5L", "category": "粮油", "quantity": "1", "unit_price": "89.90"},
        {
            "sku": "6909876543210",
            "name": "蒙牛纯牛奶 250ml×24",
            "category": "乳品",
            "quantity": "2",
            "unit_price": "59.50",
        },
    ],
}


EXAMPLE_PURCHASE = {
    **EXAMPLE_ORDER,
    "purchased_at": "2026-11-23T02:15:00Z",
    "total": "208.90",
    "items": [
        {
            "line_no": 1,
            "sku": "6901234567890",
            "name": "金龙鱼花生油 5L",
            "category": "粮油",
            "quantity": "1",
            "unit_price": "89.90",
            "amount": "89.90",
        },
        {
            "line_no": 2,
            "sku": "6909876543210",
            "name": "蒙牛纯牛奶 250ml×24",
            "category": "乳品",
            "quantity": "2",
            "unit_price": "59.50",
            "amount": "119.00",
        },
    ],
    "created_at": "2026-11-23T02:15:04Z",
}


class LineItem(RequestModel):
    sku: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    category: Annotated[str, StringConstraints(max_length=100)] | None = None
    quantity: Annotated[Decimal, Field(gt=0, le=Decimal("1000000"), max_digits=12, decimal_places=3), DecimalText()]
    unit_price: Annotated[Decimal, Field(ge=0, le=Decimal("100000000"), max_digits=14, decimal_places=2), DecimalText()]


class PurchaseCreate(RequestModel):
    order_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="The order system's id: the natural idempotency key"
    )
    customer_id: uuid.UUID
    purchased_at: Annotated[Timestamp, Documented(pattern=r"^(199[0-9]|[2-8][0-9]{3})-")] = Field(
        description="From 1990 up to a day from now"
    )
    channel: Channel = "store"
    store_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    items: list[LineItem] = Field(min_length=1, max_length=500)

    @field_validator("purchased_at")
    @classmethod
    def _not_in_future(cls, value: dt.datetime) -> dt.datetime:
        # time.time(): this runs once per order of a bulk import, where datetime.now() shows in profiles.
        if value.timestamp() > time.time() + 86400:
            raise ValueError("purchased_at is in the future")
        if value.year < 1990:
            raise ValueError("purchased_at is before 1990")
        return value

    model_config = {"json_schema_extra": {"examples": [EXAMPLE_ORDER]}}


class BulkPurchases(RequestModel):
    purchases: list[Any] = Field(
        min_length=1, description="Orders in the shape of `POST /v1/purchases`; each is validated on its own"
    )

    model_config = {"json_schema_extra": {"examples": [{"purchases": [EXAMPLE_ORDER]}]}}


class LineRead(ResponseModel):
    line_no: int
    sku: str
    name: str | None
    category: str | None
    quantity: Quantity
    unit_price: Money
    amount: Money


class PurchaseRead(ResponseModel):
    order_id: str
    customer_id: uuid.UUID
    purchased_at: dt.datetime
    channel: str
    store_id: str | None
    currency: str
    total: Money
    items: list[LineRead] = Field(validation_alias="lines")
    created_at: dt.datetime

    model_config = {"json_schema_extra": {"examples": [EXAMPLE_PURCHASE]}}


class PurchaseFeedItem(PurchaseRead):
    sequence: int = Field(validation_alias="id")

    model_config = {"json_schema_extra": {"examples": [{**EXAMPLE_PURCHASE, "sequence": 90817}]}}


class BulkRowResult(BaseModel):
    index: int
    order_id: str | None
    status: Literal["created", "existing", "conflict", "invalid"]
    detail: str | None = None
    errors: list[dict[str, str]] | None = None


class BulkResult(BaseModel):
    created: int
    existing: int
    rejected: int
    results: list[BulkRowResult]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "created": 1,
                    "existing": 1,
                    "rejected": 1,
                    "results": [
                        {"index": 0, "order_id": "POS-20261123-000123", "status": "created"},
                        {"index": 1, "order_id": "POS-20261123-000124", "status": "existing"},
                        {
                            "index": 2,
                            "order_id": "POS-20261123-000125",
                            "status": "invalid",
                            "errors": [{"field": "items.0.quantity", "message": "Input should be greater than 0"}],
                        },
                    ],
                }
            ]
        }
    }

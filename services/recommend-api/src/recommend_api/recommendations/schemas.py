"""Bodies of the recommendation endpoints."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from crm_kit.schemas import RequestModel, WholeNumber

Sku = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Suggestion(BaseModel):
    sku: str
    name: str | None
    category: str | None
    score: float
    reason: Literal["repeat", "bought_together", "popular"] = Field(
        description="repeat: bought before (how often, when last); bought_together: goes with `because`; popular"
    )
    times_bought: int | None = Field(None, description="repeat: the customer's orders that had it")
    last_bought_at: dt.datetime | None = Field(None, description="repeat: when the customer last bought it")
    because: list[str] = Field(default_factory=list, description="bought_together: the items that led to it")


class Recommendations(BaseModel):
    customer_id: uuid.UUID | None = Field(description="The live profile served (a merged id resolves to it)")
    personalised: bool = Field(
        description="False for cold start, erased or restricted customers and those without profiling consent"
    )
    model_version: int
    items: list[Suggestion]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
                    "personalised": True,
                    "model_version": 7,
                    "items": [
                        {"sku": "6909876543210", "name": "蒙牛纯牛奶 250ml×24", "category": "乳品", "score": 0.82,
                         "reason": "repeat", "times_bought": 6, "last_bought_at": "2026-11-20T02:15:00Z",
                         "because": []},
                        {"sku": "6901234567001", "name": "桂格燕麦片 1kg", "category": "早餐", "score": 0.31,
                         "reason": "bought_together", "times_bought": None, "last_bought_at": None,
                         "because": ["6909876543210"]},
                    ],
                }
            ]
        }
    }  # fmt: skip


EXAMPLE_ASSOCIATION = {
    "antecedent": ["6909876543210"],
    "consequent": "6901234567001",
    "consequent_name": "桂格燕麦片 1kg",
    "count": 1840,
    "support": 0.0045,
    "confidence": 0.21,
    "lift": 3.4,
}


class Association(BaseModel):
    antecedent: list[str] = Field(description="Items in the basket")
    consequent: str = Field(description="The item they lead to")
    consequent_name: str | None = None
    count: int = Field(description="Baskets holding all of them")
    support: float = Field(description="Share of all baskets holding all of them")
    confidence: float = Field(description="Of the baskets with the antecedent, the share that also had the consequent")
    lift: float = Field(description="Confidence over the consequent's own share of baskets; > 1 means they attract")

    model_config = {"json_schema_extra": {"examples": [EXAMPLE_ASSOCIATION]}}


class Related(BaseModel):
    sku: str
    name: str | None
    model_version: int
    items: list[Association]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "sku": "6909876543210",
                    "name": "蒙牛纯牛奶 250ml×24",
                    "model_version": 7,
                    "items": [EXAMPLE_ASSOCIATION],
                }
            ]
        }
    }


class BasketCompletion(RequestModel):
    items: list[Sku] = Field(min_length=1, max_length=100, description="SKUs in the cart")
    customer_id: uuid.UUID | None = Field(None, description="Personalise by this customer's history")
    limit: Annotated[int, Field(ge=1, le=50), WholeNumber] = 10

    model_config = {
        "json_schema_extra": {
            "examples": [{"items": ["6909876543210"], "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42"}]
        }
    }


class Popular(BaseModel):
    category: str | None
    model_version: int
    items: list[Suggestion]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "category": "乳品",
                    "model_version": 7,
                    "items": [
                        {"sku": "6909876543210", "name": "蒙牛纯牛奶 250ml×24", "category": "乳品", "score": 412.6,
                         "reason": "popular", "times_bought": None, "last_bought_at": None, "because": []},
                        {"sku": "6907992500133", "name": "伊利安慕希酸奶 205g×12", "category": "乳品", "score": 388.1,
                         "reason": "popular", "times_bought": None, "last_bought_at": None, "because": []},
                    ],
                }
            ]
        }
    }  # fmt: skip

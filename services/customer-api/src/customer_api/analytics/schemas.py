"""Bodies of customer value, segments, churn risk, the CLV model, refresh jobs and repurchase rates."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, model_validator

from crm_kit.schemas import Money, PastTimestamp, RequestModel, ResponseModel, Timestamp
from customer_api.customers.schemas import Tier

MAX_EXCLUDED_CUSTOMERS = 10_000


class RefreshRequest(RequestModel):
    # Not in the future: a refresh writes live tiers and segments, and as of a future day every customer would lapse.
    as_of: PastTimestamp | None = Field(
        None, description="End of the observation period (purchases before it count), not in the future; default now"
    )

    model_config = {"json_schema_extra": {"examples": [{}, {"as_of": "1997-10-01T00:00:00+08:00"}]}}


class JobRead(ResponseModel):
    id: uuid.UUID
    status: Literal["queued", "running", "succeeded", "failed"]
    as_of: dt.datetime | None
    progress: float
    stage: str | None
    requested_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None
    stats: dict[str, Any] | None

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "0196f2d0-3b4c-7d5e-8f60-1a2b3c4d5e6f",
                    "status": "running",
                    "as_of": None,
                    "progress": 0.3,
                    "stage": "scoring and fitting",
                    "requested_at": "2026-11-23T01:00:00Z",
                    "started_at": "2026-11-23T01:00:01Z",
                    "finished_at": None,
                    "error": None,
                    "stats": None,
                }
            ]
        }
    }


class Rfm(BaseModel):
    recency_days: int | None
    frequency: int = Field(description="Purchase days inside the RFM window")
    monetary: Money = Field(description="Spend inside the RFM window")
    r: int | None
    f: int | None
    m: int | None
    segment: str | None


class ChurnReason(BaseModel):
    code: Literal["p_alive_low", "p_alive_falling", "overdue"]
    detail: str


class ChurnRisk(BaseModel):
    score: float | None = Field(description="1 − P(alive)")
    at_risk: bool
    value_at_risk: Money
    reasons: list[ChurnReason]


class CustomerValueRead(BaseModel):
    customer_id: uuid.UUID
    profiled: bool
    excluded_reason: Literal["restricted", "profiling_consent_withdrawn"] | None = None
    tier: str
    tier_locked: bool
    credit_rating: str | None
    as_of: dt.datetime | None = None
    computed_at: dt.datetime | None = None
    model_version: int | None = None
    rfm: Rfm | None = None
    established_value: Money | None = Field(None, description="Everything the customer spent (既成价值)")
    trailing_spend: Money | None = Field(None, description="Spend over the tier window")
    p_alive: float | None = None
    expected_purchases: float | None = Field(None, description="Expected purchase days in the next `expected_days`")
    expected_days: int
    expected_order_value: Money | None = None
    predicted_value: Money | None = Field(None, description="Discounted predicted spend over `horizon_days` (潜在价值)")
    horizon_days: int
    churn_risk: ChurnRisk | None = None

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
                    "profiled": True,
                    "excluded_reason": None,
                    "tier": "gold",
                    "tier_locked": False,
                    "credit_rating": "AA",
                    "as_of": "2026-11-23T00:00:00Z",
                    "computed_at": "2026-11-23T01:03:27Z",
                    "model_version": 12,
                    "rfm": {
                        "recency_days": 3,
                        "frequency": 18,
                        "monetary": "3860.40",
                        "r": 5,
                        "f": 5,
                        "m": 4,
                        "segment": "Champions",
                    },
                    "established_value": "12480.60",
                    "trailing_spend": "3860.40",
                    "p_alive": 0.97,
                    "expected_purchases": 4.2,
                    "expected_days": 90,
                    "expected_order_value": "214.50",
                    "predicted_value": "2710.80",
                    "horizon_days": 365,
                    "churn_risk": {"score": 0.03, "at_risk": False, "value_at_risk": "0.00", "reasons": []},
                }
            ]
        }
    }


class SegmentRow(BaseModel):
    name: str | None
    customers: int
    established_value: Money
    predicted_value: Money
    value_at_risk: Money


class SegmentsRead(BaseModel):
    as_of: dt.datetime | None
    model_version: int | None
    segments: list[SegmentRow]
    tiers: list[SegmentRow]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "as_of": "2026-11-23T00:00:00Z",
                    "model_version": 12,
                    "segments": [
                        {"name": "Champions", "customers": 1840, "established_value": "5120400.00",
                         "predicted_value": "2210350.00", "value_at_risk": "18400.00"},
                        {"name": "At Risk", "customers": 960, "established_value": "1380200.00",
                         "predicted_value": "210400.00", "value_at_risk": "402300.00"},
                    ],
                    "tiers": [
                        {"name": "gold", "customers": 520, "established_value": "3980600.00",
                         "predicted_value": "1450200.00", "value_at_risk": "96000.00"},
                    ],
                }
            ]
        }
    }  # fmt: skip


class ChurnRiskItem(BaseModel):
    customer_id: uuid.UUID
    name: str | None
    tier: str
    segment: str | None
    owner_id: str | None
    established_value: Money
    trailing_spend: Money
    predicted_value: Money | None
    p_alive: float | None
    p_alive_previous: float | None
    days_since_last_purchase: int | None
    typical_interval_days: float | None
    value_at_risk: Money
    reasons: list[ChurnReason]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "customer_id": "0196f1c2-8b4f-7d2e-9b62-4c3a7b2d1f53",
                    "name": "李娜",
                    "tier": "gold",
                    "segment": "At Risk",
                    "owner_id": "staff-017",
                    "established_value": "18620.00",
                    "trailing_spend": "420.00",
                    "predicted_value": "960.30",
                    "p_alive": 0.31,
                    "p_alive_previous": 0.78,
                    "days_since_last_purchase": 96,
                    "typical_interval_days": 12.5,
                    "value_at_risk": "2080.40",
                    "reasons": [
                        {"code": "p_alive_falling", "detail": "P(alive) fell from 0.78 to 0.31"},
                        {"code": "overdue", "detail": "96 days since the last purchase, usually every 12.5"},
                    ],
                }
            ]
        }
    }


class ClvModelRead(ResponseModel):
    version: int = Field(validation_alias="id")
    as_of: dt.datetime
    fitted_at: dt.datetime
    time_unit: str
    time_unit_days: int
    customers: int
    bgnbd: dict[str, Any] | None = Field(description="r, alpha, a, b of the BG/NBD purchase model")
    gamma_gamma: dict[str, Any] | None = Field(description="p, q, v of the Gamma-Gamma spend model")
    holdout: dict[str, Any] | None = Field(description="Predicted vs actual repeat purchases in a held-out period")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "version": 12,
                    "as_of": "2026-11-23T00:00:00Z",
                    "fitted_at": "2026-11-23T01:02:10Z",
                    "time_unit": "week",
                    "time_unit_days": 7,
                    "customers": 23570,
                    "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
                    "gamma_gamma": {"p": 6.25, "q": 3.74, "v": 15.45},
                    "holdout": {
                        "calibration_end": "2026-05-26",
                        "holdout_end": "2026-11-22",
                        "customers": 21480,
                        "predicted_repeat_purchases": 9731.4,
                        "actual_repeat_purchases": 9902,
                        "by_frequency": [
                            {"frequency": "0", "customers": 11820, "predicted_mean": 0.2311, "actual_mean": 0.2254}
                        ],
                        "bgnbd": {"r": 0.251, "alpha": 4.52, "a": 0.801, "b": 2.39},
                    },
                }
            ]
        }
    }


class RepurchaseRequest(RequestModel):
    start: Timestamp = Field(alias="from", description="Start of the period whose buyers are followed")
    end: Timestamp = Field(alias="to", description="End of the period (exclusive)")
    tier: Tier | None = Field(None, description="Only customers of this tier; default every tier")
    exclude_customer_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=MAX_EXCLUDED_CUSTOMERS, description="Customers left out, e.g. complainants"
    )
    windows_days: list[Annotated[int, Field(ge=1, le=365)]] = Field(
        default_factory=lambda: [30, 90],
        min_length=1,
        max_length=4,
        description="Repurchase windows in days, each once",
        json_schema_extra={"uniqueItems": True},
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "from": "2026-10-01T00:00:00+08:00",
                    "to": "2026-11-01T00:00:00+08:00",
                    "tier": "gold",
                    "exclude_customer_ids": ["0192f0c4-5a4e-7d2b-9a51-3c3f1c2e8b10"],
                    "windows_days": [30, 90],
                }
            ]
        }
    }

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.start >= self.end:
            raise ValueError("'from' must be before 'to'")
        if len(set(self.windows_days)) != len(self.windows_days):
            raise ValueError("windows_days must not repeat a window")
        return self


class RepurchaseWindow(BaseModel):
    days: int
    eligible: int = Field(description="Customers whose first purchase in the period is at least `days` days old")
    repurchased: int = Field(description="Eligible customers who bought again within `days` days of it")
    rate: float | None = Field(description="repurchased / eligible; null when nobody is eligible")


class RepurchaseRead(BaseModel):
    as_of: dt.datetime = Field(description="The moment the windows were judged observable against")
    tier: str | None
    customers: int = Field(description="Customers with a purchase in the period (after the tier filter and exclusions)")
    windows: list[RepurchaseWindow]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "as_of": "2026-11-23T08:00:00Z",
                    "tier": "gold",
                    "customers": 412,
                    "windows": [
                        {"days": 30, "eligible": 412, "repurchased": 263, "rate": 0.638},
                        {"days": 90, "eligible": 0, "repurchased": 0, "rate": None},
                    ],
                }
            ]
        }
    }

"""Bodies of the recovery endpoints. Money is a decimal string."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, PlainSerializer, StringConstraints

from crm_kit.schemas import RequestModel, ResponseModel

ActionType = Literal[
    "apology", "explanation", "callback", "visit", "refund", "coupon", "gift", "points", "tailored_offer"
]  # fmt: skip
Money = Annotated[Decimal, PlainSerializer(lambda v: f"{v:.2f}", return_type=str)]
Staff = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(max_length=2000)]


class ActionCreate(RequestModel):
    type: ActionType
    value: Decimal | None = Field(None, ge=0, le=Decimal("10000000"), decimal_places=2, description="Money (points)")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    owner_id: Staff | None = None
    due_at: AwareDatetime | None = None
    note: Text | None = None
    coupon_code: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    coupon_expires_at: AwareDatetime | None = None


class PlanCreate(RequestModel):
    owner_id: Staff | None = Field(None, description="Who answers for the plan; the complaint's assignee by default")
    actions: list[ActionCreate] | None = Field(
        None, max_length=20, description="Default: an apology, a callback for valued customers, a tailored offer"
    )
    controllable: bool | None = Field(None, description="Could the company have prevented the failure?")
    avoid_categories: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=20, description="Product categories offers must avoid (the SKU always is)"
    )
    follow_up_days: list[Annotated[int, Field(ge=1, le=365)]] | None = Field(None, min_length=1, max_length=10)

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "owner_id": "staff-017",
                    "controllable": True,
                    "actions": [
                        {"type": "apology", "note": "店长致电致歉"},
                        {"type": "coupon", "value": "50.00", "coupon_code": "SORRY-50-8841",
                         "coupon_expires_at": "2026-12-31T23:59:59+08:00"},
                        {"type": "tailored_offer"},
                    ],
                }
            ]
        }
    }  # fmt: skip


class ActionComplete(RequestModel):
    note: Text | None = None
    value: Decimal | None = Field(None, ge=0, le=Decimal("10000000"), decimal_places=2)
    coupon_code: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    coupon_expires_at: AwareDatetime | None = None
    redeemed_at: AwareDatetime | None = Field(None, description="A coupon's redemption (may come after it is done)")


class FollowUpRecord(RequestModel):
    satisfaction: int = Field(ge=1, le=5, description="The customer's score when asked")
    note: Text | None = None


class ActionRead(ResponseModel):
    id: uuid.UUID
    type: str
    value: Money | None
    currency: str
    owner_id: str | None
    due_at: dt.datetime | None
    status: str
    completed_at: dt.datetime | None
    note: str | None
    coupon_code: str | None
    coupon_expires_at: dt.datetime | None
    coupon_redeemed_at: dt.datetime | None
    offer_status: str | None = Field(description="tailored_offer: pending until recommend-api answered")
    offer: list[dict[str, Any]] | None


class FollowUpRead(ResponseModel):
    id: uuid.UUID
    offset_days: int
    due_at: dt.datetime | None
    status: str
    done_at: dt.datetime | None
    satisfaction: int | None
    outcome: str | None


class PlanRead(ResponseModel):
    id: uuid.UUID
    complaint_id: uuid.UUID
    customer_id: uuid.UUID
    owner_id: str | None
    status: Literal["open", "following_up", "closed"]
    triggers: list[str]
    category: str
    severity: str
    tier: str | None
    controllable: bool | None
    tenure_days: int | None
    prior_complaints_90d: int
    double_deviation: bool
    satisfaction_before: int | None
    avoid_skus: list[str]
    avoid_categories: list[str]
    complaint_closed_at: dt.datetime | None
    outcome: Literal["pending", "recovered", "at_risk", "lost"]
    evidence: dict[str, Any]
    evaluated_at: dt.datetime | None
    first_action_at: dt.datetime | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    actions: list[ActionRead]
    follow_ups: list[FollowUpRead]

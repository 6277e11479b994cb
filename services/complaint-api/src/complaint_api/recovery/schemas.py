"""Bodies of the recovery endpoints. Money is a decimal string."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from crm_kit.schemas import DecimalText, Flag, Money, PastTimestamp, RequestModel, ResponseModel, Timestamp, WholeNumber

ActionType = Literal[
    "apology", "explanation", "callback", "visit", "refund", "coupon", "gift", "points", "tailored_offer"
]  # fmt: skip
Amount = Annotated[Decimal, Field(ge=0, le=Decimal("10000000"), decimal_places=2), DecimalText()]
Staff = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(max_length=2000)]


class ActionCreate(RequestModel):
    type: ActionType
    value: Amount | None = Field(None, description="Money (points)")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    owner_id: Staff | None = None
    due_at: Timestamp | None = None
    note: Text | None = None
    coupon_code: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    coupon_expires_at: Timestamp | None = None


class PlanCreate(RequestModel):
    owner_id: Staff | None = Field(None, description="Who answers for the plan; the complaint's assignee by default")
    actions: list[ActionCreate] | None = Field(
        None,
        max_length=20,
        description="Default: an apology, a callback for valued customers, a tailored offer (left out for a customer "
        "who takes no marketing: PIPL restriction or marketing consent withdrawn; asking for one then is a 422)",
    )
    controllable: Flag | None = Field(None, description="Could the company have prevented the failure?")
    avoid_categories: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=20, description="Product categories offers must avoid (the SKU always is)"
    )
    follow_up_days: list[Annotated[int, Field(ge=1, le=365), WholeNumber]] | None = Field(
        None, min_length=1, max_length=10, description="Days after closing, whole numbers; default 3, 30 and 90"
    )

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
    value: Amount | None = None
    coupon_code: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    coupon_expires_at: Timestamp | None = None
    redeemed_at: PastTimestamp | None = Field(
        None,
        description="A coupon's redemption (may come after it is done): not in the future, not before the complaint "
        "was taken, not after the coupon expired (422)",
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "note": "50元券已发到会员账户",
                    "value": "50.00",
                    "coupon_code": "SORRY-50-8841",
                    "coupon_expires_at": "2026-12-31T23:59:59+08:00",
                }
            ]
        }
    }


class FollowUpRecord(RequestModel):
    satisfaction: Annotated[int, Field(ge=1, le=5), WholeNumber] = Field(description="The customer's score when asked")
    note: Text | None = None

    model_config = {
        "json_schema_extra": {"examples": [{"satisfaction": 4, "note": "顾客表示问题已解决，会继续来店购物"}]}
    }


class ActionRead(ResponseModel):
    id: uuid.UUID
    type: str
    value: Money | None
    currency: str
    owner_id: str | None
    due_at: dt.datetime | None
    status: str = Field(description="pending | done | cancelled (with its plan, or a withheld tailored offer)")
    completed_at: dt.datetime | None
    note: str | None
    coupon_code: str | None
    coupon_expires_at: dt.datetime | None
    coupon_redeemed_at: dt.datetime | None
    offer_status: Literal["pending", "filled", "withheld"] | None = Field(
        description="tailored_offer: `pending` until recommend-api answered, then `filled`; `withheld` (final, no "
        "items) when customer-api says the customer takes no marketing or was erased"
    )
    offer: list[dict[str, Any]] | None
    offer_withheld_reason: str | None = Field(
        description="Why a tailored offer was withheld: `no marketing: processing restricted` (PIPL), "
        "`marketing consent withdrawn`, or `customer erased`"
    )


class FollowUpRead(ResponseModel):
    id: uuid.UUID
    offset_days: int
    due_at: dt.datetime | None
    status: str = Field(description="pending | done | cancelled")
    done_at: dt.datetime | None
    satisfaction: int | None
    outcome: str | None


class PlanRead(ResponseModel):
    id: uuid.UUID
    complaint_id: uuid.UUID
    customer_id: uuid.UUID
    owner_id: str | None
    status: Literal["open", "following_up", "closed", "cancelled"] = Field(
        description="`cancelled` with its complaint: pending actions and follow-ups stop (`evidence.reason` says why)"
    )
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

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "0196f6d1-0e1f-7a2b-8c3d-5e6f7a8b9c0d",
                    "complaint_id": "0196f4b1-2c3d-7e5f-9a01-6b7c8d9e0f12",
                    "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
                    "owner_id": "staff-017",
                    "status": "following_up",
                    "triggers": ["tier", "severity"],
                    "category": "returns_refunds",
                    "severity": "high",
                    "tier": "gold",
                    "controllable": True,
                    "tenure_days": 260,
                    "prior_complaints_90d": 0,
                    "double_deviation": False,
                    "satisfaction_before": 3,
                    "avoid_skus": ["6901234500012"],
                    "avoid_categories": ["厨房电器"],
                    "complaint_closed_at": "2026-11-24T09:00:00Z",
                    "outcome": "recovered",
                    "evidence": {
                        "as_of": "2026-12-02T01:00:00+00:00",
                        "days_since_close": 7.67,
                        "first_purchase": {"order_id": "POS-20261130-000311",
                                           "purchased_at": "2026-11-30T03:20:00+00:00", "total": "156.80"},
                        "first_purchase_at": "2026-11-30T03:20:00+00:00",
                        "repurchase_30d": True,
                        "repurchase_90d": True,
                        "orders_30d": 1,
                        "orders_90d": 1,
                        "coupon_redeemed": True,
                        "follow_up_satisfaction": 4,
                        "repeat_complaint": None,
                        "double_deviation": False,
                    },
                    "evaluated_at": "2026-12-02T01:00:00Z",
                    "first_action_at": "2026-11-24T09:20:00Z",
                    "version": 5,
                    "created_at": "2026-11-24T09:00:00Z",
                    "updated_at": "2026-12-02T01:00:00Z",
                    "actions": [
                        {"id": "0196f6d1-1a2b-7c3d-8e4f-5a6b7c8d9e0f", "type": "coupon", "value": "50.00",
                         "currency": "CNY", "owner_id": "staff-017", "due_at": "2026-11-25T09:00:00Z",
                         "status": "done", "completed_at": "2026-11-24T09:20:00Z", "note": "50元券已发到会员账户",
                         "coupon_code": "SORRY-50-8841", "coupon_expires_at": "2026-12-31T15:59:59Z",
                         "coupon_redeemed_at": "2026-11-30T03:20:00Z", "offer_status": None, "offer": None,
                         "offer_withheld_reason": None},
                        {"id": "0196f6d1-1a2b-7c3d-8e4f-5a6b7c8d9e10", "type": "tailored_offer", "value": None,
                         "currency": "CNY", "owner_id": "staff-017", "due_at": "2026-11-25T09:00:00Z",
                         "status": "pending", "completed_at": None, "note": None, "coupon_code": None,
                         "coupon_expires_at": None, "coupon_redeemed_at": None, "offer_status": "filled",
                         "offer": [{"sku": "6909876543210", "name": "蒙牛纯牛奶 250ml×24", "category": "乳品",
                                    "score": 0.82, "reason": "repeat"}], "offer_withheld_reason": None},
                    ],
                    "follow_ups": [
                        {"id": "0196f6d1-2b3c-7d4e-8f5a-6b7c8d9e0f1a", "offset_days": 7,
                         "due_at": "2026-12-01T09:00:00Z", "status": "done", "done_at": "2026-12-02T01:00:00Z",
                         "satisfaction": 4, "outcome": "recovered"},
                        {"id": "0196f6d1-2b3c-7d4e-8f5a-6b7c8d9e0f1b", "offset_days": 30,
                         "due_at": "2026-12-24T09:00:00Z", "status": "pending", "done_at": None,
                         "satisfaction": None, "outcome": None},
                    ],
                }
            ]
        }
    }  # fmt: skip

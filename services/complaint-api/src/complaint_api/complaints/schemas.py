"""Bodies of complaints, their transitions, timeline and satisfaction."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from crm_kit.schemas import RequestModel, ResponseModel

Channel = Literal["phone", "web", "app", "store", "wechat"]
Severity = Literal["low", "medium", "high", "critical"]
Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal["open", "answered", "escalated", "resolved", "replied", "closed", "reopened", "cancelled"]
Category = Literal[
    "product_quality",  # 商品质量
    "food_safety",  # 食品安全
    "service_attitude",  # 服务态度
    "delivery",  # 配送
    "returns_refunds",  # 退换货与退款
    "price",  # 价格与促销
    "membership",  # 会员与积分
    "billing",  # 结算与发票
    "store_environment",  # 购物环境与停车
    "other",
]
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text5000 = Annotated[str, StringConstraints(min_length=1, max_length=5000)]
Id64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ComplaintCreate(RequestModel):
    customer_id: uuid.UUID
    channel: Channel
    category: Category
    subject: Text200
    description: Text5000
    order_id: Id64 | None = None
    sku: Id64 | None = None
    severity: Severity = "medium"
    follows_up: uuid.UUID | None = Field(None, description="An earlier complaint this one continues")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
                    "channel": "phone",
                    "category": "returns_refunds",
                    "subject": "网购的电饭煲有质量问题，想退货",
                    "description": "11月20日在App下单的电饭煲，收到后无法加热，我想直接退货退款。",
                    "order_id": "APP-20261120-8812",
                    "sku": "6901234500012",
                    "severity": "high",
                }
            ]
        }
    }


class Suggestion(BaseModel):
    article_id: uuid.UUID
    slug: str
    title: str
    score: float
    snippet: str


class ComplaintRead(ResponseModel):
    id: uuid.UUID
    number: str
    customer_id: uuid.UUID
    customer_snapshot: dict[str, Any]
    snapshot_status: Literal["pending", "ok", "unknown_customer"]
    channel: str
    category: str
    subject: str
    description: str
    order_id: str | None
    sku: str | None
    severity: str
    priority: Priority
    status: Status
    department: str | None
    assignee_id: str | None
    answered_article_id: uuid.UUID | None
    root_cause: str | None
    resolution: str | None
    corrective_action: str | None
    duplicate_of: uuid.UUID | None
    follows_up: uuid.UUID | None
    cancel_reason: str | None
    suggestions: list[Suggestion]
    on_hold_since: dt.datetime | None
    first_response_due: dt.datetime | None = Field(description="Null while on hold: the clock stands still")
    resolution_due: dt.datetime | None
    first_response_breached: bool
    resolution_breached: bool
    first_responded_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    reopen_count: int
    satisfaction: dict[str, Any] | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class Answer(RequestModel):
    """Step 2: the manual holds the answer; the agent answers on the spot."""

    article_id: uuid.UUID | None = Field(None, description="The knowledge-base article the answer came from")
    message: Text5000 = Field(description="What the customer was told")


class Escalate(RequestModel):
    """Step 3: hand the complaint to the responsible person."""

    department: Id64
    assignee_id: Id64
    note: Annotated[str, StringConstraints(max_length=5000)] | None = None


class Resolution(RequestModel):
    """Step 4: the responsible person's result."""

    root_cause: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    resolution: Text5000
    corrective_action: Text5000 | None = Field(None, description="整改: what changes so it does not happen again")


class Reply(RequestModel):
    """Step 5: tell the customer the result."""

    message: Text5000


class Close(RequestModel):
    note: Annotated[str, StringConstraints(max_length=5000)] | None = None


class Reopen(RequestModel):
    reason: Text5000


class Cancel(RequestModel):
    reason: Literal["duplicate", "invalid", "withdrawn"]
    duplicate_of: uuid.UUID | None = Field(None, description="Required when the reason is `duplicate`")
    note: Annotated[str, StringConstraints(max_length=5000)] | None = None


class Note(RequestModel):
    note: Text5000
    visibility: Literal["internal", "public"] = "internal"


class Hold(RequestModel):
    reason: Text200 = Field(description="What the complaint waits for from the customer")


class SatisfactionCreate(RequestModel):
    score: int = Field(ge=1, le=5)
    reason_code: Literal["speed", "attitude", "outcome", "communication", "other"] | None = None
    comment: Annotated[str, StringConstraints(max_length=2000)] | None = None


class TimelineEvent(ResponseModel):
    id: int
    type: str
    actor: str
    occurred_at: dt.datetime
    from_status: str | None
    to_status: str | None
    visibility: Literal["internal", "public"]
    note: str | None
    data: dict[str, Any]

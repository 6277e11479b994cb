"""Bodies of complaints, their transitions, timeline and satisfaction."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from crm_kit.schemas import RequestModel, ResponseModel, WholeNumber

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


COMPLAINT_EXAMPLE = {
    "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
    "channel": "phone",
    "category": "returns_refunds",
    "subject": "网购的电饭煲有质量问题，想退货",
    "description": "11月20日在App下单的电饭煲，收到后无法加热，我想直接退货退款。",
    "order_id": "APP-20261120-8812",
    "sku": "6901234500012",
    "severity": "high",
}


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

    model_config = {"json_schema_extra": {"examples": [COMPLAINT_EXAMPLE]}}


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
    customer_snapshot: dict[str, Any] = Field(
        description="What customer-api said of the customer: name, tier, type, since, and their PIPL state "
        "(`restricted`; `marketing_consent`: granted | withdrawn | null), which its customer feed keeps current. "
        "Empty while pending and after an erasure"
    )
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

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "0196f4b1-2c3d-7e5f-9a01-6b7c8d9e0f12",
                    "number": "C20261123-0042",
                    **COMPLAINT_EXAMPLE,
                    "customer_snapshot": {"name": "王芳", "tier": "gold", "type": "individual",
                                          "since": "2026-03-08T06:12:45Z", "restricted": False,
                                          "marketing_consent": "granted"},
                    "snapshot_status": "ok",
                    "priority": "high",
                    "status": "escalated",
                    "department": "售后服务部",
                    "assignee_id": "mgr-012",
                    "answered_article_id": None,
                    "root_cause": None,
                    "resolution": None,
                    "corrective_action": None,
                    "duplicate_of": None,
                    "follows_up": None,
                    "cancel_reason": None,
                    "suggestions": [
                        {"article_id": "0196e0aa-4b5c-7d6e-8f70-8192a3b4c5d6", "slug": "returns-7-day-no-reason",
                         "title": "7天无理由退货规则", "score": 8.42,
                         "snippet": "线上订单自签收之日起7天内可无理由【退货】，也可在App“我的订单”中申请【退货】……"}
                    ],
                    "on_hold_since": None,
                    "first_response_due": "2026-11-23T04:00:00Z",
                    "resolution_due": "2026-11-24T10:00:00Z",
                    "first_response_breached": False,
                    "resolution_breached": False,
                    "first_responded_at": "2026-11-23T02:41:09Z",
                    "resolved_at": None,
                    "closed_at": None,
                    "reopen_count": 0,
                    "satisfaction": None,
                    "version": 2,
                    "created_at": "2026-11-23T02:30:17Z",
                    "updated_at": "2026-11-23T02:41:09Z",
                }
            ]
        }
    }  # fmt: skip


class Answer(RequestModel):
    """Step 2: the manual holds the answer; the agent answers on the spot."""

    article_id: uuid.UUID | None = Field(None, description="The knowledge-base article the answer came from")
    message: Text5000 = Field(description="What the customer was told")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "article_id": "0196e0aa-4b5c-7d6e-8f70-8192a3b4c5d6",
                    "message": "已为您登记退货，快递员明天上门取件，退款将在收货后3个工作日内原路退回。",
                }
            ]
        }
    }


class Escalate(RequestModel):
    """Step 3: hand the complaint to the responsible person."""

    department: Id64
    assignee_id: Id64
    note: Annotated[str, StringConstraints(max_length=5000)] | None = None

    model_config = {
        "json_schema_extra": {
            "examples": [{"department": "售后服务部", "assignee_id": "mgr-012", "note": "请核实该批次电饭煲的质检记录"}]
        }
    }


class Resolution(RequestModel):
    """Step 4: the responsible person's result."""

    root_cause: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    resolution: Text5000
    corrective_action: Text5000 | None = Field(None, description="整改: what changes so it does not happen again")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "root_cause": "supplier_defect",
                    "resolution": "同意退货退款，另补偿50元购物券。",
                    "corrective_action": "该批次电饭煲下架并退回供应商，到货抽检比例提高到10%。",
                }
            ]
        }
    }


class Reply(RequestModel):
    """Step 5: tell the customer the result."""

    message: Text5000

    model_config = {
        "json_schema_extra": {
            "examples": [{"message": "王女士您好，您的退款189元已原路退回，另赠50元购物券，感谢您的耐心。"}]
        }
    }


class Close(RequestModel):
    note: Annotated[str, StringConstraints(max_length=5000)] | None = None

    model_config = {"json_schema_extra": {"examples": [{"note": "顾客确认已收到退款，同意结案"}]}}


class Reopen(RequestModel):
    reason: Text5000

    model_config = {"json_schema_extra": {"examples": [{"reason": "顾客来电称退款至今未到账"}]}}


class Cancel(RequestModel):
    reason: Literal["duplicate", "invalid", "withdrawn"]
    duplicate_of: uuid.UUID | None = Field(None, description="Required with the reason `duplicate`, refused otherwise")
    note: Annotated[str, StringConstraints(max_length=5000)] | None = None

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "reason": "duplicate",
                    "duplicate_of": "0196f4b1-2c3d-7e5f-9a01-6b7c8d9e0f12",
                    "note": "顾客在App和电话各投诉了一次",
                }
            ]
        }
    }


class Note(RequestModel):
    note: Text5000
    visibility: Literal["internal", "public"] = "internal"

    model_config = {
        "json_schema_extra": {
            "examples": [
                {"note": "已联系仓库核对出库记录", "visibility": "internal"},
                {"note": "您的问题我们正在加急处理，预计明天给您答复。", "visibility": "public"},
            ]
        }
    }


class Hold(RequestModel):
    reason: Text200 = Field(description="What the complaint waits for from the customer")

    model_config = {"json_schema_extra": {"examples": [{"reason": "等待顾客提供商品照片和购物小票"}]}}


class SatisfactionCreate(RequestModel):
    score: Annotated[int, Field(ge=1, le=5), WholeNumber]
    reason_code: Literal["speed", "attitude", "outcome", "communication", "other"] | None = None
    comment: Annotated[str, StringConstraints(max_length=2000)] | None = None

    model_config = {
        "json_schema_extra": {"examples": [{"score": 4, "reason_code": "speed", "comment": "处理很快，客服态度也好"}]}
    }


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

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": 5123,
                    "type": "status_changed",
                    "actor": "cs-008",
                    "occurred_at": "2026-11-23T02:41:09Z",
                    "from_status": "open",
                    "to_status": "escalated",
                    "visibility": "internal",
                    "note": "请核实该批次电饭煲的质检记录",
                    "data": {"action": "escalate", "department": "售后服务部", "assignee_id": "mgr-012"},
                }
            ]
        }
    }

"""Bodies of webhook subscriptions and their delivery log."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints

from crm_kit.schemas import Documented, RequestModel, ResponseModel

EventName = Literal[
    "complaint.created",
    "complaint.status_changed",
    "complaint.sla_breached",
    "complaint.satisfaction_received",
    "recovery.plan_created",
    "recovery.action_due",
    "recovery.outcome_changed",
]
DeliveryStatus = Literal["pending", "delivered", "failed"]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        # Credentials in the URL would be stored and shown in every listing; the signature authenticates us.
        raise ValueError("must not carry credentials")
    try:
        port = parts.port  # None when the URL names none
    except ValueError:
        port = 0  # not a number, or past 65535
    if port == 0:
        raise ValueError("must have a port from 1 to 65535")
    return value


WebhookUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2000),
    AfterValidator(_http_url),
    Documented(pattern="^[hH][tT][tT][pP][sS]?://."),
]


WEBHOOK_EXAMPLE = {
    "id": "0196f7e2-3c4d-7e5f-8a6b-7c8d9e0f1a2b",
    "url": "https://crm-bridge.example.com/hooks/complaints",
    "events": ["complaint.created", "complaint.status_changed"],
    "created_by": "dev",
    "created_at": "2026-11-23T01:00:00Z",
}


class WebhookCreate(RequestModel):
    url: WebhookUrl = Field(description="Where events are POSTed (http or https)")
    events: list[EventName] = Field(min_length=1, description="The event types to receive")
    secret: Annotated[str, StringConstraints(min_length=16, max_length=200)] | None = Field(
        None, description="HMAC-SHA256 signing secret; one is generated (and shown once) when omitted"
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "url": "https://crm-bridge.example.com/hooks/complaints",
                    "events": ["complaint.created", "complaint.status_changed"],
                }
            ]
        }
    }


class WebhookRead(ResponseModel):
    id: uuid.UUID
    url: str
    events: list[EventName]
    created_by: str
    created_at: dt.datetime

    model_config = {"json_schema_extra": {"examples": [WEBHOOK_EXAMPLE]}}


class WebhookCreated(WebhookRead):
    secret: str | None = Field(
        description="The generated signing secret, shown only in this response; null when you chose your own"
    )

    model_config = {
        "json_schema_extra": {
            "examples": [{**WEBHOOK_EXAMPLE, "secret": "whsec_kq2V7w8Zk1Yb0Xc9Vd4Ue6Tf5Sg2Rh1QpL3mN8oJ4iH"}]
        }
    }


class DeliveryRead(ResponseModel):
    id: uuid.UUID = Field(description="Also sent as X-CRM-Delivery and the body's `id`")
    event_id: int
    event: EventName = Field(validation_alias="event_type")
    complaint_id: uuid.UUID
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "0196f7e3-4d5e-7f6a-8b7c-8d9e0f1a2b3c",
                    "event_id": 5123,
                    "event": "complaint.status_changed",
                    "complaint_id": "0196f4b1-2c3d-7e5f-9a01-6b7c8d9e0f12",
                    "status": "pending",
                    "attempts": 2,
                    "last_status_code": 503,
                    "last_error": "answered HTTP 503",
                    "next_attempt_at": "2026-11-23T02:43:40Z",
                    "last_attempt_at": "2026-11-23T02:42:40Z",
                    "delivered_at": None,
                    "created_at": "2026-11-23T02:41:10Z",
                }
            ]
        }
    }

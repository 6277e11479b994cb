"""Bodies of callback requests."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from crm_kit.schemas import RequestModel, ResponseModel, Timestamp


class CallbackCreate(RequestModel):
    customer_id: uuid.UUID | None = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    phone: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        None, description="Needed when the caller is not a known customer; mainland numbers as typed"
    )
    topic: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    channel: Literal["web", "app", "wechat", "phone", "store"] = "web"
    preferred_at: Timestamp | None = Field(None, description="Call no earlier than this")
    complaint_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        if self.customer_id is None and self.phone is None:
            raise ValueError("a callback needs a customer_id or a phone number")
        return self

    model_config = {
        "json_schema_extra": {
            "anyOf": [  # what _reachable checks
                {"required": ["customer_id"], "properties": {"customer_id": {"type": "string"}}},
                {"required": ["phone"], "properties": {"phone": {"type": "string"}}},
            ],
            "examples": [
                {"name": "陈先生", "phone": "13912345678", "topic": "咨询家电以旧换新补贴", "channel": "web"},
            ],
        }
    }


class CallbackComplete(RequestModel):
    outcome: Literal["reached", "no_answer", "wrong_number"]
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None

    model_config = {
        "json_schema_extra": {"examples": [{"outcome": "reached", "note": "已告知以旧换新补贴标准，顾客周末到店"}]}
    }


class CallbackRead(ResponseModel):
    id: uuid.UUID
    customer_id: uuid.UUID | None
    name: str | None
    phone: str | None = Field(description="Masked (`+86139****5678`) unless the key has `customers:pii`")
    topic: str
    channel: str
    complaint_id: uuid.UUID | None
    priority: str
    snapshot_status: Literal["pending", "ok", "unknown_customer", "no_customer"] | None = Field(
        description="`pending` while customer-api could not be asked about the customer yet (the customer of a "
        "phone left alone, the name of one named by id, and the priority are filled in once it answers); "
        "`no_customer` when no live profile has the phone left alone: the caller is anonymous; null for such a "
        "callback taken before phones were looked up"
    )
    preferred_at: dt.datetime | None
    due_at: dt.datetime
    status: Literal["pending", "completed"]
    attempts: int
    outcome: str | None
    note: str | None
    agent: str | None
    completed_at: dt.datetime | None
    version: int
    created_at: dt.datetime
    pii_masked: bool = Field(False, description="True when `phone` is masked: the key lacks `customers:pii`")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "0196f5c0-9d8e-7f6a-8b5c-4d3e2f1a0b9c",
                    "customer_id": None,
                    "name": "陈先生",
                    "phone": "+8613912345678",
                    "topic": "咨询家电以旧换新补贴",
                    "channel": "web",
                    "complaint_id": None,
                    "priority": "normal",
                    "snapshot_status": "no_customer",
                    "preferred_at": None,
                    "due_at": "2026-11-23T03:30:00Z",
                    "status": "pending",
                    "attempts": 0,
                    "outcome": None,
                    "note": None,
                    "agent": None,
                    "completed_at": None,
                    "version": 1,
                    "created_at": "2026-11-23T03:00:00Z",
                }
            ]
        }
    }

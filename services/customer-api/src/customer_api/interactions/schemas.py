"""Bodies of contact-history entries."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from crm_kit.schemas import RequestModel, ResponseModel, Timestamp, WholeNumber

Kind = Literal["visit", "call", "email", "complaint", "survey", "note", "callback"]


def _if_then(given: dict[str, Any], needed: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema rule: a body whose fields match ``given`` must also have the fields ``needed``."""
    return {
        "if": {"required": list(given), "properties": given},
        "then": {"required": list(needed), "properties": needed},
    }


class InteractionCreate(RequestModel):
    kind: Kind
    occurred_at: Timestamp | None = Field(None, description="Defaults to now")
    channel: Literal["store", "phone", "web", "app", "wechat", "email", "sms", "other"] | None = None
    direction: Literal["inbound", "outbound"] | None = None
    subject: Annotated[str, StringConstraints(max_length=200)] | None = None
    note: Annotated[str, StringConstraints(max_length=5000)] | None = None
    score: Annotated[int, Field(ge=1, le=5), WholeNumber] | None = Field(
        None, description="Satisfaction 1–5; required for a survey"
    )
    staff_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    source: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]{1,32}$")] | None = Field(
        None, description="The recording system, e.g. `complaint-api`"
    )
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        None, description="The record's id in `source`; the same pair again returns the existing entry"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.kind == "survey" and self.score is None:
            raise ValueError("a survey needs a score from 1 to 5")
        if (self.source is None) != (self.external_id is None):
            raise ValueError("source and external_id go together")
        return self

    model_config = {
        "json_schema_extra": {
            "allOf": [  # what _consistent checks
                _if_then({"kind": {"const": "survey"}}, {"score": {"type": "integer"}}),
                _if_then({"source": {"type": "string"}}, {"external_id": {"type": "string"}}),
                _if_then({"external_id": {"type": "string"}}, {"source": {"type": "string"}}),
            ],
            "examples": [
                {
                    "kind": "call",
                    "channel": "phone",
                    "direction": "outbound",
                    "subject": "回访：退货处理满意度",
                    "note": "顾客对退款速度满意，建议增加自提点",
                    "staff_id": "cs-008",
                },
                {"kind": "survey", "channel": "app", "score": 4, "subject": "购物满意度调查"},
            ],
        }
    }


class InteractionRead(ResponseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    kind: str
    occurred_at: dt.datetime
    channel: str | None
    direction: str | None
    subject: str | None
    note: str | None
    score: int | None
    staff_id: str | None
    source: str | None
    external_id: str | None
    created_at: dt.datetime

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "0196f3a8-1c2d-7e4f-8a90-5b6c7d8e9f01",
                    "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
                    "kind": "call",
                    "occurred_at": "2026-11-23T06:40:00Z",
                    "channel": "phone",
                    "direction": "outbound",
                    "subject": "回访：退货处理满意度",
                    "note": "顾客对退款速度满意，建议增加自提点",
                    "score": None,
                    "staff_id": "cs-008",
                    "source": None,
                    "external_id": None,
                    "created_at": "2026-11-23T06:41:12Z",
                }
            ],
        }
    }

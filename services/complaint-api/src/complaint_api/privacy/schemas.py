"""The PIPL export document: the customer's complaints with their timelines, callbacks, recovery plans and the
contact-history entries owed to customer-api."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field

from complaint_api.callbacks.schemas import CallbackRead
from complaint_api.complaints.schemas import ComplaintRead, TimelineEvent
from complaint_api.recovery.schemas import FollowUpRead, PlanRead
from crm_kit.schemas import ResponseModel


def _example(model: type[BaseModel]) -> dict[str, Any]:
    extra: Any = model.model_config["json_schema_extra"]
    example: dict[str, Any] = extra["examples"][0]
    return example


class ComplaintExport(ComplaintRead):
    timeline: list[TimelineEvent] = Field(
        description="Every event, oldest first: public messages (what the customer was told) and internal notes "
        "(what staff wrote about the complaint), told apart by `visibility`"
    )


class FollowUpExport(FollowUpRead):
    note: str | None = Field(description="What the customer said when asked")


class PlanExport(PlanRead):
    follow_ups: list[FollowUpExport]  # type: ignore[assignment]  # the same follow-ups, with their notes


class ContactRecordExport(ResponseModel):
    """An entry of the customer's contact history that complaint-api sends (or sent) to customer-api."""

    id: uuid.UUID
    external_id: str
    status: str = Field(description="pending | sent | dropped")
    body: dict[str, Any] = Field(description="The entry as customer-api receives it")
    created_at: dt.datetime


class ExportCounts(BaseModel):
    complaints: int
    timeline_events: int
    callbacks: int
    recovery_plans: int
    contact_records: int


_PLAN = _example(PlanRead)
_OPENED = "complaint:0196f4b1-2c3d-7e5f-9a01-6b7c8d9e0f12:opened"

EXPORT_EXAMPLE: dict[str, Any] = {
    "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
    "exported_at": "2026-12-02T08:30:00Z",
    "counts": {"complaints": 1, "timeline_events": 1, "callbacks": 1, "recovery_plans": 1, "contact_records": 1},
    "complaints": [{**_example(ComplaintRead), "timeline": [_example(TimelineEvent)]}],
    "callbacks": [
        {**_example(CallbackRead), "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42", "name": "王芳",
         "phone": "+8613812345678", "complaint_id": "0196f4b1-2c3d-7e5f-9a01-6b7c8d9e0f12", "snapshot_status": "ok"}
    ],
    "recovery_plans": [
        {**_PLAN, "follow_ups": [{**f, "note": "顾客表示问题已解决，会继续来店购物" if f["satisfaction"] else None}
                                 for f in _PLAN["follow_ups"]]}
    ],
    "contact_records": [
        {"id": "0196f6d1-3c4d-7e5f-8a6b-7c8d9e0f1a2b", "external_id": _OPENED, "status": "sent",
         "body": {"kind": "complaint", "subject": "投诉 C20261123-0042 已受理（returns_refunds）",
                  "occurred_at": "2026-11-23T02:30:17+00:00", "source": "complaint-api", "external_id": _OPENED,
                  "direction": "inbound", "channel": "phone"},
         "created_at": "2026-11-23T02:30:17Z"}
    ],
}  # fmt: skip


class CustomerExport(BaseModel):
    customer_id: uuid.UUID
    exported_at: dt.datetime
    counts: ExportCounts
    complaints: list[ComplaintExport] = Field(description="Oldest first, those of profiles merged into this one too")
    callbacks: list[CallbackRead] = Field(
        description="Callbacks asked for by the customer (by id, or by a phone of theirs left alone) or about one "
        "of their complaints, oldest first"
    )
    recovery_plans: list[PlanExport]
    contact_records: list[ContactRecordExport] = Field(
        description="Contact-history entries about the customer that complaint-api keeps until customer-api has them"
    )

    model_config = {"json_schema_extra": {"examples": [EXPORT_EXAMPLE]}}

"""Complaint tables: the complaint, its typed timeline, and the daily counter behind complaint numbers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from complaint_api.db import Base
from crm_kit.db import JSONType, UTCDateTime, utcnow


class Complaint(Base):
    __tablename__ = "complaints"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    # Name and tier as customer-api last told us; `pending` until it answers (it may be down at intake).
    customer_snapshot: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    snapshot_status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    channel: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(50), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    order_id: Mapped[str | None] = mapped_column(String(64))
    sku: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    department: Mapped[str | None] = mapped_column(String(64), index=True)
    assignee_id: Mapped[str | None] = mapped_column(String(64), index=True)
    answered_article_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Knowledge-base articles suggested at intake, with their scores.
    suggestions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    root_cause: Mapped[str | None] = mapped_column(String(100), index=True)
    resolution: Mapped[str | None] = mapped_column(Text)
    corrective_action: Mapped[str | None] = mapped_column(Text)
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("complaints.id"))
    follows_up: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("complaints.id"))
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    # SLA: due times on the business calendar; the clock stops while the complaint waits on the customer.
    on_hold_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sla_pauses: Mapped[list[list[str]]] = mapped_column(JSONType, default=list)
    first_response_breached: Mapped[bool] = mapped_column(default=False, index=True)
    resolution_breached: Mapped[bool] = mapped_column(default=False, index=True)
    first_response_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolution_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_responded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    satisfaction: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version}


class ComplaintEvent(Base):
    """One entry of a complaint's timeline: who did what, when, from which state to which."""

    __tablename__ = "complaint_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    complaint_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("complaints.id"))
    type: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    visibility: Mapped[str] = mapped_column(String(16), default="internal")
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (Index("ix_complaint_events_timeline", "complaint_id", "id"),)


class ComplaintNumber(Base):
    """The last number given out per day: complaint numbers are never reused."""

    __tablename__ = "complaint_numbers"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)

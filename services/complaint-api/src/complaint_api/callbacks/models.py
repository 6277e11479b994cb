"""The callback request table."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from complaint_api.db import Base
from crm_kit.db import UTCDateTime, utcnow


class Callback(Base):
    __tablename__ = "callbacks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    # Whether customer-api has told us who the customer is: `pending` until it answers (it may be down when the
    # callback is asked for), then `ok` or `unknown_customer`; for a phone left alone, `ok` once it is linked to
    # the live profile with that number, or `no_customer` when none has it. Null on phone-only callbacks taken
    # before phones were looked up.
    snapshot_status: Mapped[str | None] = mapped_column(String(16), index=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    complaint_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("complaints.id"))
    priority: Mapped[str] = mapped_column(String(16))
    preferred_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    agent: Mapped[str | None] = mapped_column(String(100))
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version}
    # The queue: pending callbacks by due time.
    __table_args__ = (Index("ix_callbacks_queue", "status", "due_at"),)

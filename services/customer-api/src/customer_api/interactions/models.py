"""The contact history table."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from crm_kit.db import UTCDateTime, utcnow
from customer_api.db import Base


class Interaction(Base):
    __tablename__ = "interactions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))
    direction: Mapped[str | None] = mapped_column(String(8))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    subject: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    score: Mapped[int | None] = mapped_column(Integer)
    staff_id: Mapped[str | None] = mapped_column(String(64))
    # The system that recorded it and its own id there (e.g. complaint-api + a complaint number):
    # a retried write from that system finds the record it already made.
    source: Mapped[str | None] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_interactions_customer_timeline", "customer_id", "occurred_at"),
        Index("uq_interactions_source_external_id", "source", "external_id", unique=True),
    )

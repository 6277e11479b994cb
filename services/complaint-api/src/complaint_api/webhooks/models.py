"""Webhook tables: the subscriptions (with their cursor into the complaint timeline) and the delivery log.

The complaint timeline (`complaint_events`) is the outbox: it is written in the same transaction as every
complaint change, so there is no second table of events. A delivery row is one event owed to one webhook.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from complaint_api.db import Base
from crm_kit.db import JSONType, UTCDateTime, utcnow


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Public event names ("complaint.status_changed", ...).
    events: Mapped[list[str]] = mapped_column(JSONType)
    # Kept as given: signing needs the secret itself, not a hash of it.
    secret: Mapped[str] = mapped_column(String(200))
    # Every complaint event up to this id has been looked at for this webhook (see service.next_cursor).
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One complaint event owed to one webhook, and how sending it went so far."""

    __tablename__ = "webhook_deliveries"

    # Sent as X-CRM-Delivery and the body's `id`: the same on every retry, so receivers can drop duplicates.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # Deleting a webhook deletes what it was still owed: nothing more is sent.
    webhook_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(Integer, ForeignKey("complaint_events.id", ondelete="CASCADE"))
    complaint_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("complaints.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    # The JSON body, fixed when the delivery is queued: every retry sends the same bytes.
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Due time of the next attempt; while an attempt is in flight, the end of its lease.
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # While an attempt is in flight, the end of its lease; cleared when its result is stored. What counts
    # toward the webhook's in-flight limit: a lease whose sender died stops counting when it runs out.
    leased_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        # What is due, and the per-complaint order check (the oldest pending delivery of a complaint goes first).
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "webhook_id", "complaint_id", "event_id"),
        # The attempts in flight: a short range at the end (results clear the column).
        Index("ix_webhook_deliveries_leased", "leased_until"),
    )

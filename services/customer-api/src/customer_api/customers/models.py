"""Tables of the customer archive: profiles, the identifiers they absorbed in merges, and their change feed."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_kit.db import JSONType, UTCDateTime, utcnow
from customer_api.db import Base

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
FeedSequence = BigInteger().with_variant(Integer(), "sqlite")

LIVE = text("status = 'active'")
MERGED = text("merged_into IS NOT NULL")


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    gender: Mapped[str | None] = mapped_column(String(16))
    birthday: Mapped[dt.date | None] = mapped_column(Date)
    address: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    card_number: Mapped[str | None] = mapped_column(String(32))
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    credit_rating: Mapped[str | None] = mapped_column(String(4))
    tier: Mapped[str] = mapped_column(String(16), default="regular", index=True)
    # A manually set tier that the value refresh must not change.
    tier_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    segment: Mapped[str | None] = mapped_column(String(32), index=True)
    consents: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    restricted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    merged_into: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("customers.id"))
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # Phone, email and card number identify one live profile; tombstones keep none of them.
        Index("uq_customers_live_phone", "phone", unique=True, sqlite_where=LIVE, postgresql_where=LIVE),
        Index("uq_customers_live_email", "email", unique=True, sqlite_where=LIVE, postgresql_where=LIVE),
        Index("uq_customers_live_card", "card_number", unique=True, sqlite_where=LIVE, postgresql_where=LIVE),
        # A merge finds the tombstones that pointed at the absorbed profile, and every deleted row is checked for
        # tombstones pointing at it: without an index, each is a scan of every customer.
        Index("ix_customers_merged_into", "merged_into", sqlite_where=MERGED, postgresql_where=MERGED),
    )


class CustomerIdentifier(Base):
    """A phone, email or card number (normalised as on `customers`) that a profile absorbed from a duplicate merged
    into it while holding its own: the old card and number still find the person, and no other live profile may
    take them. A row changes only together with its profile's row (a merge, a PATCH, an erasure), so the profile's
    version and its cache notification cover it."""

    __tablename__ = "customer_identifiers"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(254), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerEvent(Base):
    """One entry of the customer change feed. Holds ids and non-personal facts only."""

    __tablename__ = "customer_events"

    sequence: Mapped[int] = mapped_column(FeedSequence, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

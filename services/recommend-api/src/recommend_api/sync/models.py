"""The synced purchase lines, the items seen in them, and what the customer feed said about each customer."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, Boolean, Float, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from crm_kit.db import UTCDateTime, utcnow
from recommend_api.db import Base


class PurchaseLine(Base):
    """One order line as customer-api's purchase feed gave it; the key makes re-reading a page harmless."""

    __tablename__ = "purchase_lines"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[float] = mapped_column(Float)
    purchased_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sequence: Mapped[int] = mapped_column(BigInteger, doc="Position of the order in the purchase feed")


class Item(Base):
    """An item's latest known name and category from the order lines, for rendering and category filters."""

    __tablename__ = "items"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100))
    name_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, doc="Purchase time of the line the name is from")
    category_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, doc="Same for the category")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Every replica reads the items changed since its last look on each poll (the catalogue).
    __table_args__ = (Index("ix_items_updated_at", "updated_at"),)


class CustomerState(Base):
    """A customer that is not simply 'active with consent': merged away, erased, or not to be profiled."""

    __tablename__ = "customer_states"

    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="active", doc="active | merged | erased")
    merged_into: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    profiling: Mapped[bool] = mapped_column(Boolean, default=True, doc="False once profiling consent is withdrawn")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_customer_states_updated_at", "updated_at"),)

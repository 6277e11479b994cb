"""Orders and their lines. An order's `id` is also its position in the purchase feed."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import ForeignKey, Integer, Numeric, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_kit.db import UTCDateTime, utcnow
from customer_api.customers.models import FeedSequence
from customer_api.db import Base

# The lock every order write holds until it commits (the feed stays gap-free), and a merge takes before it moves
# the absorbed profile's orders: an order being written lands before the move, or after it on the survivor.
PURCHASE_FEED = "customer-api:purchase-feed"


class Purchase(Base):
    __tablename__ = "purchases"

    id: Mapped[int] = mapped_column(FeedSequence, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"), index=True)
    purchased_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    channel: Mapped[str] = mapped_column(String(16))
    store_id: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    # The largest order the API takes is 500 lines of 1,000,000 × 100,000,000: 5 × 10^16.
    total: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    # SHA-256 of the normalised order: the same order_id with another body is a conflict.
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    lines: Mapped[list[PurchaseLine]] = relationship(
        back_populates="purchase", order_by="PurchaseLine.line_no", lazy="raise"
    )


class PurchaseLine(Base):
    __tablename__ = "purchase_lines"

    id: Mapped[int] = mapped_column(FeedSequence, primary_key=True, autoincrement=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchases.id", ondelete="CASCADE"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100))
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    amount: Mapped[Decimal] = mapped_column(Numeric(20, 2))

    purchase: Mapped[Purchase] = relationship(back_populates="lines")

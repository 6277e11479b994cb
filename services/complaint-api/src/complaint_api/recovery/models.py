"""Recovery plans, their actions and follow-ups, and the contact-history entries owed to customer-api."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from complaint_api.db import Base
from crm_kit.db import JSONType, UTCDateTime, utcnow


class RecoveryPlan(Base):
    """One plan per complaint: what is done to win the customer back, and whether it worked."""

    __tablename__ = "recovery_plans"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    complaint_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("complaints.id"), unique=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, doc="open | following_up | closed | cancelled")
    triggers: Mapped[list[str]] = mapped_column(JSONType, default=list, doc="manual or the rules that fired")
    # The failure facts that predict the outcome, taken when the plan is made.
    category: Mapped[str] = mapped_column(String(50), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    tier: Mapped[str | None] = mapped_column(String(16), index=True)
    controllable: Mapped[bool | None] = mapped_column(Boolean, doc="Could the company have prevented it?")
    tenure_days: Mapped[int | None] = mapped_column(Integer)
    prior_complaints_90d: Mapped[int] = mapped_column(Integer, default=0)
    double_deviation: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    satisfaction_before: Mapped[int | None] = mapped_column(Integer)
    avoid_skus: Mapped[list[str]] = mapped_column(JSONType, default=list)
    avoid_categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # The outcome, computed from facts; `evidence` keeps the facts.
    complaint_closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    evaluated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    evaluation_error: Mapped[str | None] = mapped_column(Text)
    first_action_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    actions: Mapped[list[RecoveryAction]] = relationship(
        back_populates="plan", order_by="RecoveryAction.position", lazy="selectin"
    )
    follow_ups: Mapped[list[FollowUp]] = relationship(
        back_populates="plan", order_by="FollowUp.offset_days", lazy="selectin"
    )

    __mapper_args__ = {"version_id_col": version}


class RecoveryAction(Base):
    __tablename__ = "recovery_actions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    plan_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("recovery_plans.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(
        String(20), doc="apology | explanation | callback | visit | refund | coupon | gift | points | tailored_offer"
    )
    value: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), doc="Money, or points for `points`")
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    due_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True, doc="pending | done | cancelled")
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    coupon_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    coupon_redeemed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    offer_status: Mapped[str | None] = mapped_column(String(16), doc="tailored_offer: pending | filled | withheld")
    offer: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType, doc="tailored_offer: recommend-api's items")
    offer_withheld_reason: Mapped[str | None] = mapped_column(
        String(100), doc="tailored_offer: why no offer is made (the customer takes no marketing)"
    )
    offer_attempts: Mapped[int] = mapped_column(Integer, default=0)
    offer_error: Mapped[str | None] = mapped_column(Text)

    plan: Mapped[RecoveryPlan] = relationship(back_populates="actions")


class FollowUp(Base):
    """A check at a fixed number of days after the complaint closed: the outcome is evaluated then."""

    __tablename__ = "recovery_follow_ups"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    plan_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("recovery_plans.id"), index=True)
    offset_days: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True, doc="Set once the complaint closes")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True, doc="pending | done | cancelled")
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    satisfaction: Mapped[int | None] = mapped_column(Integer, doc="The customer's score when asked, 1–5")
    note: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(16), doc="The outcome this follow-up found")

    plan: Mapped[RecoveryPlan] = relationship(back_populates="follow_ups")

    __table_args__ = (UniqueConstraint("plan_id", "offset_days"),)


class ContactRecord(Base):
    """An entry owed to the customer's contact history in customer-api; sent, and retried, by a sweep.

    customer-api keys entries by (`source`, `external_id`), so sending one twice stores it once; it keeps the first
    content under a key and refuses other content under it (409), so a fact that happens again (an outcome reached
    a second time, a score corrected) is a new entry with its own key, never the old key with a new body."""

    __tablename__ = "contact_records"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True, doc="pending | sent | dropped")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

"""Tables of customer value: one value row per profiled customer, fitted CLV models, refresh jobs."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, Numeric, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_kit.db import JSONType, UTCDateTime, utcnow
from customer_api.db import Base

ACTIVE_JOB = text("status IN ('queued', 'running')")


class ClvModel(Base):
    """A BG/NBD + Gamma-Gamma fit: parameters with their time unit, and its holdout check."""

    __tablename__ = "clv_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    as_of: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    fitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    time_unit_days: Mapped[int] = mapped_column(Integer)
    customers: Mapped[int] = mapped_column(Integer)
    bgnbd: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    gamma_gamma: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    holdout: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class CustomerValue(Base):
    """The latest value analysis of one customer. Absent for customers left out of profiling."""

    __tablename__ = "customer_values"

    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"), primary_key=True)
    as_of: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("clv_models.id"))
    first_purchase_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_purchase_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    recency_days: Mapped[int | None] = mapped_column(Integer)
    frequency: Mapped[int] = mapped_column(Integer)
    # Money summed over a customer's orders: NUMERIC(38, 2) holds every order one customer could store.
    monetary: Mapped[Decimal] = mapped_column(Numeric(38, 2))
    r_score: Mapped[int | None] = mapped_column(Integer)
    f_score: Mapped[int | None] = mapped_column(Integer)
    m_score: Mapped[int | None] = mapped_column(Integer)
    segment: Mapped[str | None] = mapped_column(String(32), index=True)
    trailing_spend: Mapped[Decimal] = mapped_column(Numeric(38, 2))
    established_value: Mapped[Decimal] = mapped_column(Numeric(38, 2))
    repeat_purchases: Mapped[int] = mapped_column(Integer)
    typical_interval_days: Mapped[float | None] = mapped_column(Float)
    p_alive: Mapped[float | None] = mapped_column(Float)
    p_alive_previous: Mapped[float | None] = mapped_column(Float)
    expected_purchases: Mapped[float | None] = mapped_column(Float)
    expected_order_value: Mapped[Decimal | None] = mapped_column(Numeric(38, 2))
    predicted_value: Mapped[Decimal | None] = mapped_column(Numeric(38, 2))
    churn_risk: Mapped[float | None] = mapped_column(Float)
    at_risk: Mapped[bool] = mapped_column(default=False)
    value_at_risk: Mapped[Decimal] = mapped_column(Numeric(38, 2), default=Decimal(0))
    churn_reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)

    __table_args__ = (Index("ix_customer_values_at_risk", "at_risk", "value_at_risk"),)


class AnalyticsJob(Base):
    """A refresh of every customer's value. At most one is queued or running at a time."""

    __tablename__ = "analytics_jobs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    as_of: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    __table_args__ = (
        # The second refresh asked for while one is pending joins it instead of racing it.
        Index(
            "uq_analytics_jobs_active", text("(1)"), unique=True, sqlite_where=ACTIVE_JOB, postgresql_where=ACTIVE_JOB
        ),
    )

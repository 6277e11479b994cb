"""SLA policies: first-response and resolution targets per priority, in business minutes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from complaint_api.db import Base
from crm_kit.db import UTCDateTime, utcnow


class SlaPolicy(Base):
    __tablename__ = "sla_policies"

    priority: Mapped[str] = mapped_column(String(16), primary_key=True)
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

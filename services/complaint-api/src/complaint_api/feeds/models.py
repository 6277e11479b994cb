"""Where each followed feed was read up to."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from complaint_api.db import Base
from crm_kit.db import UTCDateTime, utcnow


class FeedCursor(Base):
    __tablename__ = "feed_cursors"

    feed: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(String(512))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)

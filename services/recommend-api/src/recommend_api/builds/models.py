"""Every model version: its build job and, once built, the model itself."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from crm_kit.db import JSONType, UTCDateTime
from recommend_api.db import Base


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = {"sqlite_autoincrement": True}  # versions never repeat, even after rows are deleted

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16), index=True, doc="queued | building | ready | failed")
    reason: Mapped[str] = mapped_column(String(32), doc="requested | scheduled | erasure | merge")
    evaluate: Mapped[bool] = mapped_column(default=True)
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    builder: Mapped[str | None] = mapped_column(String(100), doc="The replica that built it")
    data_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, doc="Latest purchase the model saw")
    build_seconds: Mapped[float | None] = mapped_column()
    params: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    sizes: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    evaluation: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    blob: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))

"""Settings base shared by every service: environment, database, API keys, secrets.

Each service subclasses `ServiceSettings` with its own env prefix for its own options. The options
every service shares keep one name across the stack (`CRM_ENV`, `DATABASE_URL`, `CRM_DEV_API_KEY`,
`CRM_API_KEYS`, `CRM_SECRET_KEY`, `CRM_DATA_DIR`) so one `.env` can serve compose and `make run`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_API_KEY = "dev-admin-key"
DEV_SECRET_KEY = "dev-secret-change-me"


class ApiKeyConfig(BaseModel):
    """One API key: its name, the SHA-256 of the key (the key itself is never configured), scopes.

    Two entries may share a name while a key is rotated: both are valid until the old one is removed.
    """

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: list[str]


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ServiceSettings(BaseSettings):
    # Only the process environment: a compose `.env` lying in the working directory must not switch a
    # local run into production.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_name: str = "crm-service"
    environment: Literal["development", "test", "production"] = Field("development", validation_alias="CRM_ENV")
    data_dir: Path = Field(Path("data"), validation_alias="CRM_DATA_DIR")
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    dev_api_key: str | None = Field(DEV_API_KEY, validation_alias="CRM_DEV_API_KEY")
    api_keys: list[ApiKeyConfig] = Field(default_factory=list, validation_alias="CRM_API_KEYS")
    secret_key: str | None = Field(DEV_SECRET_KEY, validation_alias="CRM_SECRET_KEY")
    log_level: str = Field("INFO", validation_alias="CRM_LOG_LEVEL")
    access_log: bool = Field(True, validation_alias="CRM_ACCESS_LOG")
    db_pool_size: int = Field(10, validation_alias="CRM_DB_POOL_SIZE")
    db_connect_timeout: float = Field(
        5, gt=0, validation_alias="CRM_DB_CONNECT_TIMEOUT", description="Seconds a new database connection may take"
    )
    max_body_bytes: int = Field(32 * 1024 * 1024, validation_alias="CRM_MAX_BODY_BYTES")
    rate_limit_per_minute: float = Field(
        0, ge=0, validation_alias="CRM_RATE_LIMIT_PER_MINUTE", description="Requests per key a minute; 0 = no limit"
    )
    rate_limit_burst: int = Field(60, ge=1, validation_alias="CRM_RATE_LIMIT_BURST")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.environment != "production":
            return self
        problems = []
        if self.dev_api_key:
            problems.append("CRM_DEV_API_KEY must be empty in production (the dev key has every scope)")
        if not self.secret_key or self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
            problems.append("CRM_SECRET_KEY must be set to a random value of at least 32 characters")
        if not self.api_keys:
            problems.append("CRM_API_KEYS must configure at least one API key")
        if not self.database_url:
            problems.append("DATABASE_URL must be set (SQLite is for development)")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / (self.service_name + '.db')}"

    @property
    def signing_key(self) -> bytes:
        return (self.secret_key or DEV_SECRET_KEY).encode()

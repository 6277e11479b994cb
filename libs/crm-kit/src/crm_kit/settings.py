"""Settings base shared by every service: environment, database, API keys, secrets.

Each service subclasses `ServiceSettings` with its own env prefix for its own options. The options
every service shares keep one name across the stack (`CRM_ENV`, `DATABASE_URL`, `CRM_DEV_API_KEY`,
`CRM_API_KEYS`, `CRM_SECRET_KEY`, `CRM_DATA_DIR`) so one `.env` can serve compose and `make run`.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
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


def known_time_zone(name: str) -> str:
    """`name` if it is an IANA time zone this system knows, so that a typo stops the service at start."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name like 'Asia/Shanghai')") from exc
    return name


_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


def http_url(value: str) -> str:
    """`value`, unchanged, if it is an absolute http(s) URL (a peer's base URL)."""
    try:
        _HTTP_URL.validate_python(value)
    except ValidationError as exc:
        raise ValueError(f"{value!r} is not an http(s) URL like 'http://127.0.0.1:8001'") from exc
    return value


def _log_level(value: str) -> str:
    names = logging.getLevelNamesMapping()
    if value.upper() not in names:
        raise ValueError(f"unknown log level {value!r} (one of {', '.join(names)}, in any case)")
    return value.upper()


TimeZoneName = Annotated[str, AfterValidator(known_time_zone)]
"""An IANA time zone name, checked when the settings are read."""
HttpUrlString = Annotated[str, AfterValidator(http_url)]
"""An http(s) URL kept as the string given (pydantic's URL type would add a trailing slash)."""


class ServiceSettings(BaseSettings):
    # Only the process environment: a compose `.env` lying in the working directory must not switch a
    # local run into production.
    # No inf or NaN: a timeout, an interval or a share of infinity (or NaN) is always a typo and would stall or
    # silently disable whatever uses it. Subclasses' model_config is merged with this one.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, allow_inf_nan=False)

    service_name: str = "crm-service"
    environment: Literal["development", "test", "production"] = Field("development", validation_alias="CRM_ENV")
    data_dir: Path = Field(Path("data"), validation_alias="CRM_DATA_DIR")
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    dev_api_key: str | None = Field(DEV_API_KEY, validation_alias="CRM_DEV_API_KEY")
    api_keys: list[ApiKeyConfig] = Field(default_factory=list, validation_alias="CRM_API_KEYS")
    secret_key: str | None = Field(DEV_SECRET_KEY, validation_alias="CRM_SECRET_KEY")
    log_level: Annotated[str, AfterValidator(_log_level)] = Field("INFO", validation_alias="CRM_LOG_LEVEL")
    access_log: bool = Field(True, validation_alias="CRM_ACCESS_LOG")
    db_pool_size: int = Field(10, ge=1, validation_alias="CRM_DB_POOL_SIZE")
    db_connect_timeout: float = Field(
        5, gt=0, validation_alias="CRM_DB_CONNECT_TIMEOUT", description="Seconds a new database connection may take"
    )
    db_statement_timeout: float = Field(
        60,
        ge=0,
        validation_alias="CRM_DB_STATEMENT_TIMEOUT",
        description="Seconds a PostgreSQL statement may take, its rows read included (0: no limit); beyond it a 503",
    )
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1, validation_alias="CRM_MAX_BODY_BYTES")
    rate_limit_per_minute: float = Field(
        0, ge=0, validation_alias="CRM_RATE_LIMIT_PER_MINUTE", description="Requests per key a minute; 0 = no limit"
    )
    rate_limit_burst: int = Field(60, ge=1, validation_alias="CRM_RATE_LIMIT_BURST")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _naming_variables(type(self), exc) from None

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
        if not self.database_url or self.database_url.strip().lower().startswith("sqlite"):
            problems.append("DATABASE_URL must be set to a PostgreSQL database (SQLite is for development)")
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


def _naming_variables(settings: type[ServiceSettings], exc: ValidationError) -> ValidationError:
    """`exc` with each field's error located at its environment variable (`CUSTOMER_API_BULK_MAX_ORDERS`, not
    `bulk_max_orders`): the operator who reads it at start sets variables, not fields. Fields with a
    `validation_alias` (`CRM_*`, `DATABASE_URL`) are already reported by it."""
    prefix = settings.model_config.get("env_prefix", "")
    errors: list[InitErrorDetails] = []
    for error in exc.errors():
        loc = error["loc"]
        if loc and isinstance(loc[0], str) and loc[0] in settings.model_fields:
            field = settings.model_fields[loc[0]]
            alias = field.validation_alias if isinstance(field.validation_alias, str) else None
            loc = (alias or f"{prefix}{loc[0]}".upper(), *loc[1:])
        # The message as pydantic rendered it, under the same error type.
        errors.append({"type": PydanticCustomError(error["type"], error["msg"]), "loc": loc, "input": error["input"]})
    return ValidationError.from_exception_data(exc.title, errors)

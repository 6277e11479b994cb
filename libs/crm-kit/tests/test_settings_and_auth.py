"""Settings refuse unsafe production starts; the key ring admits hashed keys and rotates them."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError
from pydantic_settings import SettingsConfigDict

from crm_kit.auth import ADMIN_SCOPE, KeyRing, Principal
from crm_kit.settings import (
    DEV_SECRET_KEY,
    ApiKeyConfig,
    ServiceSettings,
    hash_api_key,
    http_url,
    known_time_zone,
)
from crm_kit.testing import assert_setting_refused

SECRET = "s" * 40
KEY = ApiKeyConfig(name="pos", sha256=hash_api_key("pos-key"), scopes=["purchases:write"])


def production(**overrides: object) -> ServiceSettings:
    values: dict[str, object] = {
        "environment": "production",
        "dev_api_key": None,
        "secret_key": SECRET,
        "api_keys": [KEY],
        "database_url": "postgresql+asyncpg://crm@db/crm",
    }
    return ServiceSettings(**{**values, **overrides})


def test_a_safe_production_configuration_starts() -> None:
    assert production().environment == "production"


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"dev_api_key": "dev-admin-key"}, "CRM_DEV_API_KEY"),
        ({"dev_api_key": "anything"}, "CRM_DEV_API_KEY"),
        ({"secret_key": None}, "CRM_SECRET_KEY"),
        ({"secret_key": DEV_SECRET_KEY}, "CRM_SECRET_KEY"),
        ({"secret_key": "short"}, "CRM_SECRET_KEY"),
        ({"api_keys": []}, "CRM_API_KEYS"),
        ({"database_url": None}, "DATABASE_URL"),
    ],
)
def test_production_refuses_dev_keys_and_missing_secrets(overrides: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        production(**overrides)


def test_environment_variables_use_the_shared_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_ENV", "production")
    monkeypatch.setenv("CRM_DEV_API_KEY", "dev-admin-key")
    with pytest.raises(ValidationError, match="refusing to start in production"):
        ServiceSettings()
    monkeypatch.setenv("CRM_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://x@y/z")
    monkeypatch.setenv("CRM_API_KEYS", f'[{{"name": "a", "sha256": "{"0" * 64}", "scopes": ["x"]}}]')
    settings = ServiceSettings()
    assert settings.resolved_database_url == "postgresql+asyncpg://x@y/z" and settings.api_keys[0].name == "a"


def test_sqlite_is_the_default_under_the_data_dir(tmp_path: object) -> None:
    settings = ServiceSettings(service_name="customer-api", data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path}/customer-api.db"


def test_keys_are_matched_by_hash_and_rotate() -> None:
    old = ApiKeyConfig(name="pos", sha256=hash_api_key("old-key"), scopes=["purchases:write"])
    new = ApiKeyConfig(name="pos", sha256=hash_api_key("new-key"), scopes=["purchases:write"])
    ring = KeyRing(ServiceSettings(environment="test", api_keys=[old, new], dev_api_key=None))
    assert (
        ring.authenticate("old-key") == ring.authenticate("new-key") == Principal("pos", frozenset({"purchases:write"}))
    )
    assert ring.authenticate(hash_api_key("old-key")) is None
    assert ring.authenticate("dev-admin-key") is None


def test_dev_key_has_every_scope_outside_production_only() -> None:
    ring = KeyRing(ServiceSettings(environment="development"))
    principal = ring.authenticate("dev-admin-key")
    assert principal is not None and principal.has("anything:at-all") and ADMIN_SCOPE in principal.scopes
    assert not Principal("pos", frozenset({"purchases:write"})).has("customers:read")
    assert KeyRing(production()).authenticate("dev-admin-key") is None


def test_production_refuses_sqlite() -> None:
    with pytest.raises(ValidationError, match=r"DATABASE_URL must be set to a PostgreSQL database \(SQLite"):
        production(database_url="sqlite+aiosqlite:///data/customer-api.db")


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("CRM_MAX_BODY_BYTES", "-5", "greater than or equal to 1"),
        ("CRM_MAX_BODY_BYTES", "0", "greater than or equal to 1"),
        ("CRM_DB_POOL_SIZE", "0", "greater than or equal to 1"),
        ("CRM_DB_POOL_SIZE", "-1", "greater than or equal to 1"),
        ("CRM_LOG_LEVEL", "verbose", "unknown log level 'verbose'"),
        ("CRM_DB_CONNECT_TIMEOUT", "inf", "finite number"),
        ("CRM_RATE_LIMIT_PER_MINUTE", "nan", "finite number"),
    ],
)
def test_bad_shared_settings_stop_the_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    assert_setting_refused(ServiceSettings, monkeypatch, variable, value, complaint)


def test_the_shared_defaults_validate() -> None:
    settings = ServiceSettings()
    assert (settings.max_body_bytes, settings.db_pool_size, settings.log_level) == (32 * 1024 * 1024, 10, "INFO")


@pytest.mark.parametrize("level", ["debug", "Warning", "ERROR", "critical", "info"])
def test_standard_log_levels_in_any_case(monkeypatch: pytest.MonkeyPatch, level: str) -> None:
    monkeypatch.setenv("CRM_LOG_LEVEL", level)
    assert ServiceSettings().log_level == level.upper()


def test_a_service_prefix_names_the_variable_of_a_field() -> None:
    class Prefixed(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="DEMO_API_")
        items: int = Field(5, ge=1)

    with pytest.raises(ValidationError, match="DEMO_API_ITEMS") as caught:
        Prefixed(items=0)
    assert caught.value.errors()[0]["type"] == "greater_than_equal"


def test_time_zones_and_urls_are_checked() -> None:
    assert known_time_zone("Asia/Shanghai") == "Asia/Shanghai"
    for bad in ("Mars/Olympus", "", "Asia", "../etc/passwd"):
        with pytest.raises(ValueError, match="unknown time zone"):
            known_time_zone(bad)
    for good in ("http://127.0.0.1:8001", "https://customer-api.internal/base", "http://customer-api:8001"):
        assert http_url(good) == good  # kept as given: no trailing slash added
    for bad in ("not a url", "", "127.0.0.1:8001", "ftp://host/x", "http://"):
        with pytest.raises(ValueError, match="is not an http"):
            http_url(bad)

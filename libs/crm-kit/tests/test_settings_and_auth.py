"""Settings refuse unsafe production starts; the key ring admits hashed keys and rotates them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from crm_kit.auth import ADMIN_SCOPE, KeyRing, Principal
from crm_kit.settings import DEV_SECRET_KEY, ApiKeyConfig, ServiceSettings, hash_api_key

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

"""complaint-api refuses settings that would break it later: the variable is named when the settings are read."""

from __future__ import annotations

import pytest

from complaint_api.config import Settings
from crm_kit.testing import assert_setting_refused


def test_the_defaults_validate() -> None:
    settings = Settings()
    assert (settings.customer_api_url, settings.recommend_api_url) == ("http://127.0.0.1:8001", "http://127.0.0.1:8003")
    assert (settings.recovery_tiers, settings.recovery_severities) == (["gold", "silver"], ["high"])
    assert settings.recovery_follow_up_days == [3, 30, 90] and settings.business_timezone == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("COMPLAINT_API_CUSTOMER_API_URL", "not a url", "'not a url' is not an http"),
        ("COMPLAINT_API_CUSTOMER_API_URL", "127.0.0.1:8001", "is not an http"),
        ("COMPLAINT_API_RECOMMEND_API_URL", "ftp://recommend-api", "is not an http"),
        ("COMPLAINT_API_BUSINESS_TIMEZONE", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("COMPLAINT_API_RECOVERY_FOLLOW_UP_DAYS", "[-3, 0]", "greater than or equal to 1"),
        ("COMPLAINT_API_RECOVERY_FOLLOW_UP_DAYS", "[3, 400]", "less than or equal to 365"),
        ("COMPLAINT_API_RECOVERY_TIERS", '["platinum"]', "unknown tier 'platinum'"),
        ("COMPLAINT_API_RECOVERY_SEVERITIES", '["urgent"]', "unknown severity 'urgent'"),
        ("COMPLAINT_API_SWEEP_SECONDS", "inf", "finite number"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    assert_setting_refused(Settings, monkeypatch, variable, value, complaint)


def test_every_known_tier_and_severity_and_https_urls_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLAINT_API_RECOVERY_TIERS", '["gold", "silver", "bronze", "regular"]')
    monkeypatch.setenv("COMPLAINT_API_RECOVERY_SEVERITIES", '["low", "medium", "high", "critical"]')
    monkeypatch.setenv("COMPLAINT_API_RECOVERY_FOLLOW_UP_DAYS", "[1, 365]")
    monkeypatch.setenv("COMPLAINT_API_CUSTOMER_API_URL", "https://customer-api.internal:8443")
    settings = Settings()
    assert settings.customer_api_url == "https://customer-api.internal:8443"  # as given, no slash added
    assert settings.recovery_follow_up_days == [1, 365] and len(settings.recovery_severities) == 4

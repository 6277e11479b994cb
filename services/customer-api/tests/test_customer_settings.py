"""customer-api refuses settings that would break it later: the variable is named when the settings are read."""

from __future__ import annotations

import pytest

from crm_kit.testing import assert_setting_refused
from customer_api.config import SEGMENT_GRID, Settings


def test_the_defaults_validate() -> None:
    settings = Settings()
    assert (settings.default_region, settings.bulk_max_orders, settings.business_timezone) == (
        "CN",
        10_000,
        "Asia/Shanghai",
    )
    assert settings.tier_shares == {"gold": 0.05, "silver": 0.15, "bronze": 0.30}
    assert settings.rfm_segments == SEGMENT_GRID


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("CUSTOMER_API_DEFAULT_REGION", "XX", "'XX' is not a region"),
        ("CUSTOMER_API_DEFAULT_REGION", "", "is not a region"),
        ("CUSTOMER_API_BULK_MAX_ORDERS", "-1", "greater than or equal to 1"),
        ("CUSTOMER_API_BULK_MAX_ORDERS", "0", "greater than or equal to 1"),
        ("CUSTOMER_API_BUSINESS_TIMEZONE", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("CUSTOMER_API_TIER_SHARES", '{"platinum": 0.1}', "unknown tier 'platinum'"),
        ("CUSTOMER_API_TIER_SHARES", '{"regular": 0.5}', "unknown tier 'regular'"),
        ("CUSTOMER_API_TIER_SHARES", '{"silver": 0.15, "gold": 0.05}', "listed from the top"),
        ("CUSTOMER_API_TIER_SHARES", '{"gold": 0}', "positive and add up to at most 1"),
        ("CUSTOMER_API_TIER_SHARES", '{"gold": 0.6, "silver": 0.5}', "positive and add up to at most 1"),
        ("CUSTOMER_API_CLV_ANNUAL_DISCOUNT_RATE", "inf", "finite number"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    assert_setting_refused(Settings, monkeypatch, variable, value, complaint)


def test_a_lower_case_region_is_taken_and_some_tiers_may_be_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMER_API_DEFAULT_REGION", "hk")
    monkeypatch.setenv("CUSTOMER_API_TIER_SHARES", '{"gold": 0.1, "bronze": 0.9}')
    settings = Settings()
    assert settings.default_region == "HK" and settings.tier_shares == {"gold": 0.1, "bronze": 0.9}

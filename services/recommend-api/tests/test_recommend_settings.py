"""recommend-api refuses settings that would break it later: the variable is named when the settings are read."""

from __future__ import annotations

import pytest

from crm_kit.testing import assert_setting_refused
from recommend_api.config import Settings


def test_the_defaults_validate() -> None:
    assert Settings().customer_api_url == "http://127.0.0.1:8001"


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("RECOMMEND_API_CUSTOMER_API_URL", "not a url", "'not a url' is not an http"),
        ("RECOMMEND_API_SYNC_SECONDS", "inf", "finite number"),
        ("RECOMMEND_API_SYNC_PAGE_SIZE", "0", "greater than or equal to 1"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    assert_setting_refused(Settings, monkeypatch, variable, value, complaint)

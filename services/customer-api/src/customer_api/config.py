"""customer-api settings: the shared ones plus `CUSTOMER_API_*`."""

from typing import get_args

import phonenumbers
from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from crm_kit.settings import ServiceSettings, TimeZoneName
from customer_api.customers.schemas import Tier

# The tiers a share of the base is configured for, from the top; the rest of the base is "regular".
SHARED_TIERS: tuple[str, ...] = tuple(tier for tier in get_args(Tier) if tier != "regular")

# The R×F segment map: rows are the recency score R = 1..5, columns the frequency score F = 1..5.
# It follows the common RFM segment grid (Champions recent and frequent, Can't Lose Them frequent but
# long gone, …), with "Lost" split off from Hibernating for R = 1, F = 1.
SEGMENT_GRID: list[list[str]] = [
    ["Lost", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],  # R = 1
    ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],  # R = 2
    ["About to Sleep", "About to Sleep", "Need Attention", "Loyal", "Loyal"],  # R = 3
    ["Promising", "Potential Loyalist", "Potential Loyalist", "Loyal", "Loyal"],  # R = 4
    ["New", "Potential Loyalist", "Potential Loyalist", "Champions", "Champions"],  # R = 5
]


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMER_API_", extra="ignore", populate_by_name=True)

    service_name: str = "customer-api"
    default_region: str = Field("CN", description="Region of phones typed without a country code (ISO 3166 code)")
    bulk_max_orders: int = Field(10_000, ge=1)
    profile_cache_size: int = Field(
        50_000, ge=0, description="Profiles kept rendered in memory (PostgreSQL only; 0 turns the cache off)"
    )

    # Customer value. Purchase days are counted in the business time zone.
    business_timezone: TimeZoneName = "Asia/Shanghai"
    rfm_window_days: int = Field(365, ge=1, description="Frequency and monetary value count purchases this far back")
    rfm_segments: list[list[str]] = Field(default_factory=lambda: [row[:] for row in SEGMENT_GRID])
    tier_window_days: int = Field(365, ge=1, description="Tiers rank customers by their spend over this window")
    # Tier → share of the profiled customer base, from the top: 5% gold, the next 15% silver, next 30% bronze.
    tier_shares: dict[str, float] = Field(default_factory=lambda: {"gold": 0.05, "silver": 0.15, "bronze": 0.30})
    clv_time_unit_days: int = Field(7, ge=1, description="The models' time unit (7 = weeks, as in the papers)")
    clv_expected_days: int = Field(90, ge=1, description="Expected purchases are given for this many days ahead")
    clv_horizon_days: int = Field(365, ge=1, description="Predicted value covers this horizon")
    clv_annual_discount_rate: float = Field(0.10, ge=0)
    clv_holdout_days: int = Field(90, ge=0, description="The model check holds out this many days; 0 skips it")
    churn_p_alive_below: float = Field(0.5, gt=0, lt=1)
    churn_p_alive_drop: float = Field(0.2, gt=0, lt=1)
    churn_overdue_factor: float = Field(2.0, gt=1, description="Overdue: silent this many times their usual gap")
    churn_top_value_share: float = Field(
        0.5, gt=0, le=1, description="Worth saving: within this top share by spend or predicted value"
    )
    refresh_on_start: bool = Field(False, description="Queue a value refresh when the service starts")

    @field_validator("default_region")
    @classmethod
    def _phone_region(cls, region: str) -> str:
        code = region.strip().upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{region!r} is not a region phone numbers are known for (e.g. CN, HK, US)")
        return code

    @field_validator("rfm_segments")
    @classmethod
    def _five_by_five(cls, grid: list[list[str]]) -> list[list[str]]:
        if len(grid) != 5 or any(len(row) != 5 for row in grid):
            raise ValueError("the segment map has 5 rows (R = 1..5) of 5 names (F = 1..5)")
        return grid

    @field_validator("tier_shares")
    @classmethod
    def _shares_fit(cls, shares: dict[str, float]) -> dict[str, float]:
        unknown = [tier for tier in shares if tier not in SHARED_TIERS]
        if unknown:
            raise ValueError(f"unknown tier {unknown[0]!r}: shares are for {', '.join(SHARED_TIERS)}")
        # Tiers are handed out from the top in the order given: gold before silver before bronze.
        if list(shares) != [tier for tier in SHARED_TIERS if tier in shares]:
            raise ValueError(f"tier shares are listed from the top: {', '.join(SHARED_TIERS)}")
        if any(share <= 0 for share in shares.values()) or sum(shares.values()) > 1:
            raise ValueError("tier shares are positive and add up to at most 1")
        return shares

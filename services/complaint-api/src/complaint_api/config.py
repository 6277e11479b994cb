"""complaint-api settings: the shared ones plus `COMPLAINT_API_*`."""

import datetime as dt
from typing import Annotated, get_args

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from complaint_api.complaints.schemas import Severity
from complaint_api.sla.calendar import (
    CHINA_2026_HOLIDAYS,
    CHINA_2026_WORKDAYS,
    BusinessCalendar,
    MakeupHoursMissing,
    calendar_from_settings,
)
from crm_kit.settings import HttpUrlString, ServiceSettings, TimeZoneName

# customer-api's tiers (its `Tier`), which customer snapshots carry.
TIERS: tuple[str, ...] = ("gold", "silver", "bronze", "regular")
SEVERITIES: tuple[str, ...] = get_args(Severity)


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COMPLAINT_API_", extra="ignore", populate_by_name=True)

    service_name: str = "complaint-api"
    customer_api_url: HttpUrlString = Field("http://127.0.0.1:8001", description="Base URL of customer-api")
    customer_api_key: str | None = Field(None, description="Key for customer-api; the dev key in development")
    business_timezone: TimeZoneName = "Asia/Shanghai"
    reopen_days: int = Field(14, ge=0, description="A closed complaint can be reopened this many days")
    intake_lookup_seconds: float = Field(
        0.5, gt=0, description="How long intake waits for customer-api before keeping the snapshot pending"
    )
    # The customer-service centre's business calendar that SLA clocks run on. The 2026 holiday and 调休
    # lists are defaults to check against each year's State Council notice.
    business_hours: str = Field("mon-sun 09:00-21:00", description='e.g. "mon-fri 09:00-18:00; sat-sun 10:00-16:00"')
    holidays: list[dt.date] = Field(default_factory=lambda: sorted(CHINA_2026_HOLIDAYS))
    workdays: list[dt.date] = Field(default_factory=lambda: sorted(CHINA_2026_WORKDAYS))
    makeup_hours: str | None = Field(
        None, description='Hours of a make-up workday (调休), e.g. "09:00-18:00"; unset: the Monday hours'
    )
    sweep_seconds: float = Field(15.0, gt=0, description="How often the SLA sweep and snapshot completion run")
    callback_minutes: int = Field(30, ge=1, description="Business minutes within which a callback is due")
    callback_attempts: int = Field(3, ge=1, description="Unanswered calls before a callback is given up")
    webhook_allow_private: bool = Field(
        False, description="Let webhooks point at loopback, private or link-local addresses (on-premises receivers)"
    )
    recommend_api_url: HttpUrlString = Field("http://127.0.0.1:8003", description="Base URL of recommend-api")
    recommend_api_key: str | None = Field(None, description="Key for recommend-api; the dev key in development")
    # Service recovery: when a plan is made by itself, what it holds, and when the outcome is checked.
    recovery_satisfaction_at_most: int = Field(3, ge=0, le=5, description="A score this low makes a recovery plan")
    recovery_tiers: list[str] = Field(
        default_factory=lambda: ["gold", "silver"], description="Complaints of these tiers get a recovery plan"
    )
    recovery_severities: list[str] = Field(
        default_factory=lambda: ["high"], description="Complaints of these severities get a recovery plan"
    )
    recovery_repeat_days: int = Field(
        90, ge=0, description="A second complaint within this many days gets a plan (double deviation)"
    )
    # 1–365 days, as the API's follow_up_days.
    recovery_follow_up_days: list[Annotated[int, Field(ge=1, le=365)]] = Field(
        default_factory=lambda: [3, 30, 90], description="Follow-ups this many days after the complaint closed"
    )
    recovery_action_hours: float = Field(24, gt=0, description="Default actions are due this many hours after the plan")
    recovery_offer_items: int = Field(5, ge=1, le=20, description="Items a tailored offer asks recommend-api for")

    @field_validator("recovery_tiers")
    @classmethod
    def _known_tiers(cls, tiers: list[str]) -> list[str]:
        return _known("tier", tiers, TIERS)

    @field_validator("recovery_severities")
    @classmethod
    def _known_severities(cls, severities: list[str]) -> list[str]:
        return _known("severity", severities, SEVERITIES)

    def calendar(self) -> BusinessCalendar:
        try:
            return calendar_from_settings(
                self.business_timezone, self.business_hours, [d.isoformat() for d in self.holidays],
                [d.isoformat() for d in self.workdays], self.makeup_hours,
            )  # fmt: skip
        except MakeupHoursMissing:
            # The calendar names its own parameter; the operator needs the variable to set.
            raise MakeupHoursMissing(
                "make-up workdays (COMPLAINT_API_WORKDAYS, by default the 2026 调休 days) need hours but Monday is "
                'closed in COMPLAINT_API_BUSINESS_HOURS: set COMPLAINT_API_MAKEUP_HOURS, e.g. "09:00-18:00" '
                "(or COMPLAINT_API_WORKDAYS=[] for none)"
            ) from None


def _known(kind: str, values: list[str], known: tuple[str, ...]) -> list[str]:
    unknown = [value for value in values if value not in known]
    if unknown:
        raise ValueError(f"unknown {kind} {unknown[0]!r} (one of {', '.join(known)})")
    return values

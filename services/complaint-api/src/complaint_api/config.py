"""complaint-api settings: the shared ones plus `COMPLAINT_API_*`."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from crm_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COMPLAINT_API_", extra="ignore", populate_by_name=True)

    service_name: str = "complaint-api"
    customer_api_url: str = Field("http://127.0.0.1:8001", description="Base URL of customer-api")
    customer_api_key: str | None = Field(None, description="Key for customer-api; the dev key in development")
    business_timezone: str = "Asia/Shanghai"
    reopen_days: int = Field(14, ge=0, description="A closed complaint can be reopened this many days")
    intake_lookup_seconds: float = Field(
        0.5, gt=0, description="How long intake waits for customer-api before keeping the snapshot pending"
    )

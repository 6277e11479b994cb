"""customer-api settings: the shared ones plus `CUSTOMER_API_*`."""

from pydantic_settings import SettingsConfigDict

from crm_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMER_API_", extra="ignore", populate_by_name=True)

    service_name: str = "customer-api"
    default_region: str = "CN"
    bulk_max_orders: int = 10_000

"""recommend-api settings: the shared ones plus `RECOMMEND_API_*`."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from crm_kit.settings import HttpUrlString, ServiceSettings
from recommend_api.engine.model import Params


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECOMMEND_API_", extra="ignore", populate_by_name=True)

    service_name: str = "recommend-api"
    customer_api_url: HttpUrlString = Field("http://127.0.0.1:8001", description="Base URL of customer-api")
    customer_api_key: str | None = Field(None, description="Key for customer-api; the dev key in development")
    sync_seconds: float = Field(30.0, gt=0, description="How often the purchase and customer feeds are followed")
    sync_page_size: int = Field(500, ge=1, le=1000, description="Feed entries read per transaction")
    model_poll_seconds: float = Field(5.0, gt=0, description="How often a replica looks for a newer built model")
    rebuild_minutes: float = Field(
        360.0, ge=0, description="Rebuild the model this often when purchases arrived since (0: only on request)"
    )
    build_stale_seconds: float = Field(
        120.0, gt=0, description="A build whose worker has not reported for this long is taken over by another"
    )
    explore_every: int = Field(
        0, ge=0, description="Every n-th slot of a customer's list shows an item new to them (0: none); see kind=new"
    )

    def model_params(self) -> Params:
        """The parameters every build of this service uses: the engine's defaults and the configured ones."""
        return Params(explore_every=self.explore_every)

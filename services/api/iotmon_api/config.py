"""Process settings of the API service, from ``IOTMON_API_*`` environment variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from iotmon_alerts.config import AlertsDatabaseSettings
from iotmon_api.console.settings import ConsoleSettings
from iotmon_registry import RegistrySettings
from iotmon_runtime.settings import ServiceSettings
from iotmon_storage import StoreSettings


class Settings(ServiceSettings):
    """Everything the API process needs; built once in ``main`` and passed down.

    Nested fields use ``__``: ``IOTMON_API_STORE__URL``, ``IOTMON_API_REGISTRY__URL``.
    """

    model_config = SettingsConfigDict(env_prefix="IOTMON_API_")
    service_name: ClassVar[str] = "iotmon-api"

    host: str = Field(default="127.0.0.1", description="Address uvicorn binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    token: SecretStr | None = Field(
        default=None,
        description="A static token of a service principal: reads every tenant. For a "
        "deployment's own tools; give people and integrations scoped tokens from the "
        "registry (iotmon tokens create).",
    )
    store: StoreSettings = Field(default_factory=StoreSettings, description="Time-series store.")
    registry: RegistrySettings = Field(
        default_factory=RegistrySettings,
        description="The registry: principals and their tokens, devices' sites, children.",
    )
    alerts: AlertsDatabaseSettings | None = Field(
        default=None,
        description="The alert service's database (IOTMON_API_ALERTS__URL, the same URL as "
        "IOTMON_ALERTS_DATABASE__URL): alerts, notices, silences, subscriptions, deliveries. "
        "Unset: those routes answer 503.",
    )
    bootstrap_token_ttl_s: float = Field(
        default=7 * 86_400.0,
        gt=0,
        description="In dev, with no principal configured, the API mints a service token "
        "valid this long and logs it once.",
    )
    startup_wait_s: float = Field(
        default=30.0,
        ge=0,
        le=600,
        description="How long start-up retries reaching the store before serving anyway "
        "(requests then answer 503 until it is back).",
    )
    max_buckets: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Most buckets one series request returns."
    )
    console: ConsoleSettings = Field(
        default_factory=ConsoleSettings,
        description="The operator console at /console (IOTMON_API_CONSOLE__RULES_DIR…).",
    )
    shutdown_grace_s: int = Field(
        default=5,
        ge=1,
        le=300,
        description="On shutdown, how long open requests may finish before they are closed "
        "(the console's live alert streams never finish by themselves; clients reconnect).",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="uvicorn worker processes sharing the port (iotmon-api run); each keeps "
        "its own caches.",
    )
    latest_cache_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="How long a device's latest readings are answered from memory before the "
        "store is asked again (0: every request asks the store).",
    )
    auth_cache_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="How long a token found valid is taken without asking the registry again: "
        "a revoked or expiring token still works this long (0: every request asks).",
    )
    access_log: bool = Field(default=False, description="Log one line per request.")
    metrics: bool = Field(
        default=True,
        description="Serve Prometheus metrics on GET /metrics (no token: put the API behind "
        "a proxy, or turn this off, where the port is public).",
    )

    @field_validator("token")
    @classmethod
    def _empty_token_means_none(cls, value: SecretStr | None) -> SecretStr | None:
        # IOTMON_API_TOKEN= (set but empty) must not turn on auth with an empty token.
        return value if value is not None and value.get_secret_value() else None

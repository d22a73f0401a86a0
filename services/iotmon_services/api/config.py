"""Process settings of the API service, from ``IOTMON_API_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from iotmon_edge.secrets import describe_settings_error as describe_error
from iotmon_edge.secrets import refuse_placeholder_secrets
from iotmon_services.storage import StoreSettings


class Settings(BaseSettings):
    """Everything the API process needs; built once in ``main`` and passed down.

    Nested fields use ``__``: ``IOTMON_API_STORE__URL``, ``IOTMON_API_STORE__BACKEND``.
    """

    model_config = SettingsConfigDict(
        env_prefix="IOTMON_API_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    environment: Literal["dev", "prod"] = Field(
        default="dev", description="Outside dev, placeholder secrets are refused."
    )
    host: str = Field(default="127.0.0.1", description="Address uvicorn binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    token: SecretStr | None = Field(
        default=None,
        description="When set, every /api route requires 'Authorization: Bearer <token>'.",
    )
    store: StoreSettings = Field(default_factory=StoreSettings, description="Time-series store.")
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
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="uvicorn and application log level."
    )

    @field_validator("token")
    @classmethod
    def _empty_token_means_none(cls, value: SecretStr | None) -> SecretStr | None:
        # IOTMON_API_TOKEN= (set but empty) must not turn on auth with an empty token.
        return value if value is not None and value.get_secret_value() else None

    @model_validator(mode="after")
    def _no_placeholder_secrets_outside_dev(self) -> Settings:
        if self.environment == "dev":
            return self
        secrets = {
            "IOTMON_API_TOKEN": self.token,
            "IOTMON_API_STORE__PASSWORD": self.store.password,
            "IOTMON_API_STORE__TOKEN": self.store.token,
        }
        refuse_placeholder_secrets(secrets, self.environment)
        return self


def describe_settings_error(error: ValidationError) -> str:
    """One line per problem, naming the variable, never echoing the (possibly secret) input."""
    return describe_error(error, Settings)

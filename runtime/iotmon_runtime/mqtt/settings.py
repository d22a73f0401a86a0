"""How a process reaches the broker: one spelling for every service and the edge agent.

Nested in each service's settings as ``mqtt``, so the variables read the same
everywhere: ``IOTMON_INGEST_MQTT__HOST``, ``IOTMON_EDGE_MQTT__HOST``, …
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class MqttProtocol(StrEnum):
    V5 = "5"
    V311 = "3.1.1"
    """For brokers without MQTT 5, e.g. the demo's embedded amqtt: no shared subscriptions."""


class MqttSettings(BaseModel):
    """Broker address, identity, TLS and reconnect policy."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1, description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker TCP port (8883 for TLS).")
    username: str | None = Field(default=None, description="Broker user; none for anonymous.")
    password: SecretStr | None = Field(default=None, description="Broker password.")
    client_id: str | None = Field(
        default=None,
        max_length=128,
        description="MQTT client id; each service derives a stable one when unset.",
    )
    protocol: MqttProtocol = Field(
        default=MqttProtocol.V5,
        description="5, or 3.1.1 for brokers that only speak it (no shared subscriptions).",
    )
    tls: bool = Field(default=False, description="Connect with TLS.")
    ca_file: Path | None = Field(
        default=None, description="CA bundle for TLS; the system's trust store when unset."
    )
    cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM) for brokers that require one."
    )
    key_file: Path | None = Field(default=None, description="Private key of cert_file (PEM).")
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keep-alive, seconds.")
    reconnect_min_s: int = Field(
        default=1, ge=1, le=300, description="First reconnect delay; doubles on each failure."
    )
    reconnect_max_s: int = Field(
        default=5,
        ge=1,
        le=3600,
        description="Longest reconnect delay: how late at most the client notices that the "
        "broker is back. Short for services (the broker is theirs), longer for big fleets.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must not be below reconnect_min_s")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file is set but cert_file is not")
        if (self.cert_file is not None or self.ca_file is not None) and not self.tls:
            raise ValueError("ca_file/cert_file are set but tls is false")
        return self

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

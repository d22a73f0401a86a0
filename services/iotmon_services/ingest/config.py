"""Process settings of the ingest service: one ``IngestSettings`` built in ``main()``.

Environment variables use the prefix ``IOTMON_INGEST_`` and ``__`` for nesting,
e.g. ``IOTMON_INGEST_MQTT__HOST`` or ``IOTMON_INGEST_STORE__URL``.
"""

from __future__ import annotations

import re
import socket
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_edge.secrets import refuse_placeholder_secrets
from iotmon_services.storage import StoreSettings

SERVICE_NAME = "ingest"


class MqttProtocol(StrEnum):
    V5 = "5"
    V311 = "3.1.1"


def default_instance_id() -> str:
    """The host name squeezed into a contract identifier: stable across restarts of one host."""
    cleaned = re.sub(r"[^a-z0-9_.-]", "-", socket.gethostname().lower()).strip("-._")
    return (cleaned or "ingest")[:48]


class MqttSettings(BaseModel):
    """How ingest reaches the broker."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker TCP port.")
    username: str | None = Field(default=None, description="Broker user, if it wants one.")
    password: SecretStr | None = Field(default=None, description="Broker password.")
    client_id: str | None = Field(
        default=None,
        description="Stable client id (the broker keeps the session under it); "
        "default iotmon-ingest-<instance_id>.",
    )
    protocol: MqttProtocol = Field(
        default=MqttProtocol.V5,
        description="5 (shared subscription, flow control) or 3.1.1 for brokers that only "
        "speak it (the demo's embedded amqtt); 3.1.1 subscribes without a share group.",
    )
    tls: bool = Field(default=False, description="Connect with TLS (system CA store).")
    ca_file: Path | None = Field(default=None, description="CA bundle for TLS.")
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keep-alive.")
    share_group: str = Field(
        default="iotmon-ingest",
        pattern=IDENTIFIER_PATTERN,
        description="Shared-subscription group: replicas in one group split the telemetry.",
    )
    session_expiry_s: int = Field(
        default=86_400,
        ge=0,
        description="How long the broker keeps our session (and queues telemetry) while "
        "ingest is down.",
    )
    receive_maximum: int = Field(
        default=65_535,
        ge=1,
        le=65_535,
        description="Unacknowledged messages the broker may have in flight to us (MQTT 5): "
        "acks wait for the store, so this must cover several batches.",
    )
    reconnect_min_delay_s: int = Field(default=1, ge=1, description="First reconnect delay.")
    reconnect_max_delay_s: int = Field(default=30, ge=1, description="Longest reconnect delay.")
    subscribe_status: bool = Field(
        default=True, description="Also store device availability from the status topics."
    )
    fast_path: bool = Field(
        default=True,
        description="Use the transport's buffered read / direct decode / grouped PUBACK path; "
        "false falls back to paho's public API (slower; for diagnosis).",
    )


class IngestSettings(BaseSettings):
    """Everything one ingest process needs; secrets as SecretStr."""

    model_config = SettingsConfigDict(
        env_prefix="IOTMON_INGEST_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    environment: Literal["dev", "test", "prod"] = Field(
        default="dev", description="prod refuses placeholder secrets."
    )
    instance_id: str = Field(
        default_factory=default_instance_id,
        pattern=IDENTIFIER_PATTERN,
        description="Names this replica: client id, spool folder and logs derive from it.",
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    batch_size: int = Field(
        default=5000, ge=1, le=100_000, description="Most messages validated and written at once."
    )
    batch_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Most payload bytes in one batch (gateway batches are large).",
    )
    flush_interval_s: float = Field(
        default=0.2, gt=0, le=60, description="Longest a message waits for its batch to fill."
    )
    buffer_bytes: int = Field(
        default=128 * 1024 * 1024,
        ge=1024 * 1024,
        description="Received-but-unwritten payload bytes above which ingest stops reading "
        "from the broker (TCP back-pressure).",
    )
    spool_dir: Path = Field(
        default=Path(".state/ingest/spool"),
        description="Where batches go (fsynced) while the store is unavailable.",
    )
    store_retry_min_s: float = Field(default=0.5, gt=0, description="First store retry delay.")
    store_retry_max_s: float = Field(default=15.0, gt=0, description="Longest store retry delay.")
    device_registry: Path | None = Field(
        default=None,
        description="YAML of allowed tenant/device ids or fnmatch patterns; absent = accept all.",
    )
    max_future_skew_s: float = Field(
        default=300.0, ge=0, description="Readings further in the future are dead-lettered."
    )
    max_age_s: float = Field(
        default=30 * 86_400.0, gt=0, description="Readings older than this are dead-lettered."
    )
    stats_interval_s: float = Field(
        default=30.0, gt=0, description="How often the counters are logged."
    )
    workers: int = Field(
        default=1, ge=1, le=64, description="Worker processes (iotmon ingest --workers)."
    )
    log_level: str = Field(default="INFO", description="Logging level of the service.")

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Self:
        if self.environment != "prod":
            return self
        # Named as set, with the field path too (mqtt.password) for those who build
        # IngestSettings in code.
        secrets = {
            "IOTMON_INGEST_MQTT__PASSWORD (mqtt.password)": self.mqtt.password,
            "IOTMON_INGEST_STORE__PASSWORD (store.password)": self.store.password,
            "IOTMON_INGEST_STORE__TOKEN (store.token)": self.store.token,
        }
        refuse_placeholder_secrets(secrets, self.environment)
        return self

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"iotmon-ingest-{self.instance_id}"

    def for_worker(self, index: int) -> IngestSettings:
        """Settings of worker ``index`` of a multi-process ingest: own session, own spool.

        Only worker 0 subscribes to status topics: they are not shared, so every
        worker would store each one again.
        """
        mqtt = self.mqtt.model_copy(
            update={
                "client_id": f"{self.client_id}-w{index}",
                "subscribe_status": self.mqtt.subscribe_status and index == 0,
            }
        )
        return self.model_copy(update={"mqtt": mqtt, "workers": 1})


Settings = IngestSettings
"""Every service's config module names its settings class ``Settings`` (api, edge, ingest)."""

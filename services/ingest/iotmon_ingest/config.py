"""Process settings of the ingest service: one ``IngestSettings`` built in ``main()``.

Environment variables use the prefix ``IOTMON_INGEST_`` and ``__`` for nesting,
e.g. ``IOTMON_INGEST_MQTT__HOST`` or ``IOTMON_INGEST_STORE__URL``.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_registry import RegistrySettings
from iotmon_runtime.metrics import MetricsSettings
from iotmon_runtime.mqtt import MqttSettings
from iotmon_runtime.settings import ServiceSettings
from iotmon_storage import StoreSettings

SERVICE_NAME = "ingest"
DEFAULT_SHARE_GROUP = "iotmon-ingest"
"""The group of ``--workers`` processes, and the one every ingest joined before plain was the
default (a resumed session leaves it on connect)."""


def default_instance_id() -> str:
    """The host name squeezed into a contract identifier: stable across restarts of one host."""
    cleaned = re.sub(r"[^a-z0-9_.-]", "-", socket.gethostname().lower()).strip("-._")
    return (cleaned or "ingest")[:48]


class IngestMqttSettings(MqttSettings):
    """How ingest reaches the broker: the shared fields plus its session and subscriptions."""

    share_group: str | None = Field(
        default=None,
        pattern=IDENTIFIER_PATTERN,
        description="Shared-subscription group (MQTT 5) for several ingest sessions splitting "
        "the telemetry; --workers N sets it for its workers. Unset: one plain subscription, "
        "which mosquitto keeps with the persistent session across its own restarts. "
        "mosquitto 2.0 does not persist shared subscriptions: after a broker restart, "
        "telemetry published before the group's members resubscribe is acknowledged and "
        "dropped (docs/ingest.md).",
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
    subscribe_status: bool = Field(
        default=True, description="Also store device availability from the status topics."
    )
    fast_path: bool = Field(
        default=True,
        description="Use the client's buffered read / direct decode / grouped PUBACK path; "
        "false falls back to paho's public API (slower; for diagnosis).",
    )


class IngestStoreSettings(StoreSettings):
    """The store as ingest uses it: a short timeout, so a hung store costs seconds, not 30."""

    timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="Seconds to connect to the store and to wait for each read or write of "
        "a request. A write that takes longer counts as 'store unavailable': its batch goes "
        "to the spool (nothing is lost) and the store is retried with back-off. Short "
        "because a hung store (a paused influxd accepts connections and never answers) "
        "would otherwise hold every batch this long; long enough for a 50,000-point write "
        "to a loaded InfluxDB. See docs/ingest.md.",
    )


class IngestRegistrySettings(RegistrySettings):
    """The registry (who may speak for which device) and how ingest keeps up with it."""

    refresh_interval_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="How often ingest checks the registry's revision and reloads its "
        "in-memory gateway map when it moved.",
    )
    miss_refresh_interval_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="A batch naming a child the map does not give to its gateway makes "
        "ingest check the registry at once, at most this often: a just-registered child "
        "is accepted within about this long.",
    )


class IngestMetricsSettings(MetricsSettings):
    """Ingest's /metrics (it serves no other HTTP); worker N of --workers serves port + N."""

    port: int = Field(
        default=9101,
        ge=0,
        le=65535,
        description="TCP port of /metrics (worker N of --workers: port + N); 0 picks a free "
        "one. A port that is taken stops ingest at start.",
    )


class IngestSettings(ServiceSettings):
    """Everything one ingest process needs; secrets as SecretStr."""

    model_config = SettingsConfigDict(env_prefix="IOTMON_INGEST_")
    service_name: ClassVar[str] = "iotmon-ingest"

    instance_id: str = Field(
        default_factory=default_instance_id,
        pattern=IDENTIFIER_PATTERN,
        description="Names this replica: client id, spool folder and logs derive from it.",
    )
    mqtt: IngestMqttSettings = Field(
        default_factory=IngestMqttSettings, description="How to reach the broker."
    )
    store: IngestStoreSettings = Field(
        default_factory=IngestStoreSettings, description="Time-series store."
    )
    registry: IngestRegistrySettings = Field(
        default_factory=IngestRegistrySettings,
        description="The registry: a batch reading naming another device is accepted only "
        "if the registry makes the publishing device its gateway.",
    )
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
        description="Ingest's state folder: batches go here (fsynced, one folder per client "
        "id) while the store is unavailable, and the health file beside them.",
    )
    spool_max_bytes: int | None = Field(
        default=None,
        ge=64 * 1024,
        description="Most bytes of spooled batches (per client id); none = until the disk is "
        "full. Either limit reached, ingest holds the batch unacknowledged, pauses reading "
        "from the broker (whose session keeps the backlog) and retries until the store or "
        "the spool takes it.",
    )
    store_retry_min_s: float = Field(
        default=0.5,
        gt=0,
        description="First store retry delay (also the first retry of a "
        "batch neither the store nor the spool takes).",
    )
    store_retry_max_s: float = Field(
        default=15.0, gt=0, description="Longest store (and spool) retry delay."
    )
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
        default=30.0,
        gt=0,
        description="How often the counters are logged (from a thread of its own: a write "
        "blocked on the store does not silence them).",
    )
    health_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="How often the health file (spool_dir/<client id>.health.json, read by "
        "`iotmon-ingest health`) is rewritten; it counts as stale after 3 intervals (10 s at "
        "least).",
    )
    workers: int = Field(
        default=1, ge=1, le=64, description="Worker processes (iotmon ingest --workers)."
    )
    metrics: IngestMetricsSettings = Field(
        default_factory=IngestMetricsSettings,
        description="Prometheus metrics on http://<host>:<port>/metrics (docs/metrics.md).",
    )

    @field_validator("store", mode="before")
    @classmethod
    def _ingest_store(cls, value: object) -> object:
        """A plain StoreSettings (the demo builds one for every service) counts for what it
        sets; what it leaves unset takes ingest's defaults (its shorter timeout)."""
        if isinstance(value, StoreSettings) and not isinstance(value, IngestStoreSettings):
            return value.model_dump(exclude_unset=True)
        return value

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"iotmon-ingest-{self.instance_id}"

    @property
    def spool_folder(self) -> Path:
        """This client's own spool (a session's batches replay under the same client id)."""
        return self.spool_dir / self.client_id

    @property
    def health_file(self) -> Path:
        return self.spool_dir / f"{self.client_id}.health.json"

    def health_files(self) -> list[Path]:
        """Every process's health file: one, or one per worker."""
        if self.workers == 1:
            return [self.health_file]
        return [self.for_worker(index).health_file for index in range(self.workers)]

    def for_worker(self, index: int) -> IngestSettings:
        """Settings of worker ``index`` of a multi-process ingest: own session, own spool.

        The workers split the telemetry through a shared subscription (see
        ``IngestMqttSettings.share_group`` for what a broker restart costs them).

        Only worker 0 subscribes to status topics: they are not shared, so every
        worker would store each one again.
        """
        mqtt = self.mqtt.model_copy(
            update={
                "client_id": f"{self.client_id}-w{index}",
                "subscribe_status": self.mqtt.subscribe_status and index == 0,
                "share_group": self.mqtt.share_group or DEFAULT_SHARE_GROUP,
            }
        )
        metrics = self.metrics.offset(index)
        return self.model_copy(update={"mqtt": mqtt, "workers": 1, "metrics": metrics})


Settings = IngestSettings
"""Every service's config module names its settings class ``Settings`` (api, edge, ingest)."""

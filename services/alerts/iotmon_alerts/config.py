"""Process settings of the alert service: one ``AlertsSettings`` built in ``main()``.

Environment variables use the prefix ``IOTMON_ALERTS_`` and ``__`` for nesting,
e.g. ``IOTMON_ALERTS_MQTT__HOST``, ``IOTMON_ALERTS_DATABASE__URL``.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import ClassVar, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_registry import RegistrySettings
from iotmon_runtime.metrics import MetricsSettings
from iotmon_runtime.mqtt import MqttSettings
from iotmon_runtime.settings import Environment, ServiceSettings
from iotmon_storage import StoreSettings

SERVICE_NAME = "alerts"
"""The service id in topics: ``iotmon/v1/<tenant>/_service/alerts/alert``."""
DEFAULT_SHARE_GROUP = "iotmon-alerts"
DEFAULT_DATABASE_URL = "sqlite:///.state/alerts.db"


def default_instance_id() -> str:
    cleaned = re.sub(r"[^a-z0-9_.-]", "-", socket.gethostname().lower()).strip("-._")
    return (cleaned or "alerts")[:48]


class AlertsDatabaseSettings(BaseModel):
    """Where alerts, the webhook outbox, subscriptions and API actions live (SQLAlchemy URL).

    Shared by the alert service (writes alerts and the outbox) and the API (reads
    them, writes acknowledgements, silences and subscriptions), so both name it the
    same way: ``IOTMON_ALERTS_DATABASE__URL`` and ``IOTMON_API_ALERTS__URL``.
    """

    model_config = ConfigDict(extra="forbid")

    url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL),
        description="SQLAlchemy database URL (a secret: a server URL carries its password); "
        "relative SQLite paths are from the working directory, their folder is created.",
    )

    @field_validator("url")
    @classmethod
    def _parsable(cls, value: SecretStr) -> SecretStr:
        try:
            make_url(value.get_secret_value())
        except ArgumentError:
            raise ValueError("not a SQLAlchemy database URL (e.g. sqlite:///alerts.db)") from None
        return value

    def display_url(self) -> str:
        return make_url(self.url.get_secret_value()).render_as_string(hide_password=True)


class AlertsMqttSettings(MqttSettings):
    """How the alert service reaches the broker: the shared fields plus its session."""

    share_group: str | None = Field(
        default=DEFAULT_SHARE_GROUP,
        pattern=IDENTIFIER_PATTERN,
        description="Shared-subscription group (MQTT 5) of telemetry and events. Stateful "
        "rules need every message of a device in one process: run one active replica per "
        "group (a second one in the group is a hot standby only when the first is gone). "
        "Status is always a plain subscription (retained messages are not sent to shared "
        "subscriptions).",
    )

    fast_path: bool = Field(
        default=True,
        description="Use the client's buffered read / direct decode / grouped PUBACK path "
        "(alert latency under heavy telemetry, docs/benchmarks.md); false falls back to "
        "paho's public API (slower; for diagnosis).",
    )

    @field_validator("share_group", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        # IOTMON_ALERTS_MQTT__SHARE_GROUP= (set, empty): a plain subscription.
        return None if value == "" else value

    session_expiry_s: int = Field(
        default=3600,
        ge=0,
        description="How long the broker keeps our session (queued messages) while the "
        "service is down.",
    )


class WebhookSettings(BaseModel):
    """How webhooks are delivered: timeouts, concurrency and the retry schedule."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Connect + read timeout of one delivery attempt."
    )
    max_concurrency: int = Field(
        default=64, ge=1, le=10_000, description="Deliveries in flight at once, all endpoints."
    )
    max_attempts: int = Field(
        default=12,
        ge=1,
        le=100,
        description="Attempts before a delivery is dead-lettered (list and replay it in the "
        "API). With the default backoff 12 attempts span about 6 hours.",
    )
    backoff_base_s: float = Field(
        default=5.0, gt=0, description="Delay before the second attempt; doubles each time."
    )
    backoff_max_s: float = Field(
        default=7200.0, gt=0, description="Longest delay between two attempts."
    )
    poll_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the outbox is read for due retries (new deliveries wake the "
        "dispatcher at once).",
    )


class AlertsMetricsSettings(MetricsSettings):
    """The alert service's /metrics (it serves no other HTTP)."""

    port: int = Field(
        default=9103,
        ge=0,
        le=65535,
        description="TCP port of /metrics; 0 picks a free one. A port that is taken stops "
        "the service at start.",
    )


class SimulatedClockSettings(BaseModel):
    """A clock that starts at ``epoch`` and runs ``speed`` times faster than real time.

    For simulated school days through the live service, demos and incident re-runs; the
    device events' times must then lie near ``epoch`` (they are checked against it).
    """

    model_config = ConfigDict(extra="forbid")

    epoch: AwareDatetime = Field(
        description="What the clock reads at ``starts_at`` (RFC 3339 with a time zone)."
    )
    speed: float = Field(
        default=1.0, gt=0, le=10_000, description="Simulated seconds per real second."
    )
    starts_at: AwareDatetime | None = Field(
        default=None,
        description="The real (wall) time at which the clock reads ``epoch``; unset: when "
        "the service starts. Set it to share one clock with another process.",
    )


class AlertsSettings(ServiceSettings):
    """Everything one alert-service process needs; secrets as SecretStr."""

    model_config = SettingsConfigDict(env_prefix="IOTMON_ALERTS_")
    service_name: ClassVar[str] = "iotmon-alerts"

    instance_id: str = Field(
        default_factory=default_instance_id,
        pattern=IDENTIFIER_PATTERN,
        description="Names this replica: client id and availability topic derive from it.",
    )
    mqtt: AlertsMqttSettings = Field(
        default_factory=AlertsMqttSettings, description="How to reach the broker."
    )
    database: AlertsDatabaseSettings = Field(
        default_factory=AlertsDatabaseSettings,
        description="Alerts, webhook outbox, subscriptions, API actions (SQL).",
    )
    store: StoreSettings | None = Field(
        default=None,
        description="Time-series store the alert events are written to for dashboards; "
        "unset: not written.",
    )
    registry: RegistrySettings = Field(
        default_factory=RegistrySettings,
        description="The registry: devices' sites, so a facility sees its sites' alerts.",
    )
    rules_dir: Path = Field(
        default=Path("rules"),
        description="Folder of rule files, one YAML per tenant (<tenant>.yaml).",
    )
    reload_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often the rule files are checked for changes (SIGHUP reloads at once).",
    )
    tick_interval_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often timers are evaluated (for-durations, absence, escalation).",
    )
    actions_interval_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often the database is checked for API actions (acknowledgements, "
        "silences).",
    )
    max_future_skew_s: float = Field(
        default=300.0, ge=0, description="Messages timestamped further ahead are refused."
    )
    max_age_s: float = Field(
        default=7 * 86_400.0, gt=0, description="Messages older than this are refused."
    )
    webhooks: WebhookSettings = Field(
        default_factory=WebhookSettings, description="Webhook delivery."
    )
    stats_interval_s: float = Field(
        default=60.0, gt=0, description="How often the counters are logged."
    )
    metrics: AlertsMetricsSettings = Field(
        default_factory=AlertsMetricsSettings,
        description="Prometheus metrics on http://<host>:<port>/metrics (docs/metrics.md).",
    )
    clock: SimulatedClockSettings | None = Field(
        default=None,
        description="A simulated clock (epoch and speed) for tests and demos; unset: the "
        "wall clock. Refused when the environment is prod.",
    )
    bus_journal_retention_s: float = Field(
        default=4 * 86_400.0,
        ge=3600,
        le=30 * 86_400.0,
        description="How far back the bus rules' input journal reaches: at start (and when "
        "a rule file changes) the bus rules are rebuilt from it, so runs in progress "
        "survive a restart. Longer than the bus rules' run retention (36 h) and a long "
        "weekend, so a Monday's runs still know Friday's last run end.",
    )

    @model_validator(mode="after")
    def _no_simulated_clock_in_production(self) -> Self:
        if self.clock is not None and self.environment is Environment.PROD:
            raise ValueError("clock: a simulated clock is refused when environment is 'prod'")
        return self

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"iotmon-alerts-{self.instance_id}"


Settings = AlertsSettings
"""Every service's config module names its settings class ``Settings``."""

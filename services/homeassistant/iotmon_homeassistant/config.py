"""Process settings of the Home Assistant bridge, from ``IOTMON_HOMEASSISTANT_*`` variables."""

from __future__ import annotations

import re
import socket
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_registry import RegistrySettings
from iotmon_runtime.metrics import MetricsSettings
from iotmon_runtime.mqtt import MqttSettings
from iotmon_runtime.settings import ServiceSettings

SERVICE_NAME = "homeassistant"
DISCOVERY_PREFIX_PATTERN = r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"
"""A discovery prefix: topic levels without wildcards (Home Assistant's default is
``homeassistant``)."""


def default_instance_id() -> str:
    cleaned = re.sub(r"[^a-z0-9_.-]", "-", socket.gethostname().lower()).strip("-._")
    return (cleaned or SERVICE_NAME)[:48]


class BridgeRegistrySettings(RegistrySettings):
    """The registry: which devices Home Assistant gets, and how often to look again."""

    refresh_interval_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="How often the bridge checks the registry's revision (and removes the "
        "entities of devices no longer registered).",
    )


class BridgeMetricsSettings(MetricsSettings):
    port: int = Field(
        default=9102, ge=0, le=65535, description="TCP port of /metrics; 0 picks a free one."
    )


class Settings(ServiceSettings):
    """Everything the bridge needs; built once in ``main()`` and passed down."""

    model_config = SettingsConfigDict(env_prefix="IOTMON_HOMEASSISTANT_")
    service_name: ClassVar[str] = "iotmon-homeassistant"

    instance_id: str = Field(
        default_factory=default_instance_id,
        pattern=IDENTIFIER_PATTERN,
        description="Names this bridge: its client id and its availability topic.",
    )
    mqtt: MqttSettings = Field(
        default_factory=MqttSettings,
        description="The broker Home Assistant also uses (it reads the discovery topics).",
    )
    registry: BridgeRegistrySettings = Field(
        default_factory=BridgeRegistrySettings,
        description="The registry: only its devices are announced; removing one removes "
        "its entities.",
    )
    discovery_prefix: str = Field(
        default="homeassistant",
        pattern=DISCOVERY_PREFIX_PATTERN,
        description="Home Assistant's MQTT discovery prefix (its MQTT integration setting).",
    )
    tenant: str | None = Field(
        default=None,
        pattern=IDENTIFIER_PATTERN,
        description="Announce only this tenant's devices (a home is usually one tenant); "
        "unset: every tenant's.",
    )
    retain_state: bool = Field(
        default=True,
        description="Publish states retained, so Home Assistant shows the last value after "
        "its own restart.",
    )
    device_availability: bool = Field(
        default=True,
        description="Entities are available only while their device (and its gateway) "
        "says online on its status topic; false: only while the bridge runs.",
    )
    expire_after_s: int | None = Field(
        default=None,
        ge=1,
        le=7 * 86_400,
        description="Home Assistant marks a sensor unavailable when no state came for "
        "this long; unset: never.",
    )
    metrics: BridgeMetricsSettings = Field(
        default_factory=BridgeMetricsSettings,
        description="Prometheus metrics on http://<host>:<port>/metrics.",
    )

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"iotmon-homeassistant-{self.instance_id}"

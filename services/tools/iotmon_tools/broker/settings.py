"""How ``iotmon broker`` reaches the broker: ``IOTMON_BROKER_MQTT__*`` like every service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from iotmon_runtime.mqtt import MqttSettings
from iotmon_runtime.settings import ServiceSettings
from iotmon_tools.broker.identities import DEFAULT_ADMIN_USER


class AdminMqttSettings(MqttSettings):
    username: str | None = Field(
        default=DEFAULT_ADMIN_USER, description="The broker's dynamic-security admin."
    )


class BrokerAdminSettings(ServiceSettings):
    """``IOTMON_BROKER_MQTT__HOST``, ``__PORT``, ``__USERNAME``, ``__PASSWORD``, ``__TLS``…"""

    model_config = SettingsConfigDict(env_prefix="IOTMON_BROKER_")
    service_name: ClassVar[str] = "iotmon broker"

    mqtt: AdminMqttSettings = Field(
        default_factory=AdminMqttSettings, description="The broker and its admin credentials."
    )
    timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="How long to wait for the broker's answers."
    )


Settings = BrokerAdminSettings

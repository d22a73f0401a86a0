"""Edge agent configuration: process ``Settings`` from the environment, ``AgentConfig`` from YAML.

Settings say how to reach the broker (and hold its secrets); the YAML says what
this agent is and which drivers it runs. Bad YAML fails with the file and the
key path, e.g. ``edge.yaml: drivers.0.count: Input should be greater than 0``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ByteSize, ConfigDict, Field, model_validator
from pydantic_settings import SettingsConfigDict

from iotmon_contract import MAX_BATCH_READINGS
from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_devices import DriverConfig
from iotmon_edge.health import THERMAL_ZONE
from iotmon_edge.queue_store import Synchronous
from iotmon_edge.zigbee2mqtt.config import Zigbee2MqttConfig
from iotmon_runtime.config_files import ConfigError, load_yaml_model, parse_yaml_model
from iotmon_runtime.mqtt import MqttSettings
from iotmon_runtime.settings import ServiceSettings


class PublishMode(StrEnum):
    SINGLE = "single"
    """One message per reading, on each device's telemetry topic."""
    BATCH = "batch"
    """One ``ReadingBatch`` per interval on the agent's own telemetry topic."""


class EdgeMqttSettings(MqttSettings):
    """The broker connection of an agent: the shared fields plus what an agent holds."""

    reconnect_max_s: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="Longest reconnect delay: long enough that a fleet coming back after a "
        "broker outage does not arrive all at once.",
    )
    max_queued: int = Field(
        default=100_000,
        ge=0,
        description="Messages held in memory while the broker is away (0 = no limit).",
    )
    max_inflight: int = Field(
        default=1000,
        ge=1,
        le=65_535,
        description="QoS 1 messages awaiting PUBACK; paho's default of 20 caps throughput.",
    )


class Settings(ServiceSettings):
    """Process settings from ``IOTMON_EDGE_*`` environment variables.

    Broker settings nest under ``mqtt``: ``IOTMON_EDGE_MQTT__HOST``,
    ``IOTMON_EDGE_MQTT__PASSWORD``.
    """

    model_config = SettingsConfigDict(env_prefix="IOTMON_EDGE_")
    service_name: ClassVar[str] = "iotmon-edge"

    config_file: Path = Field(Path("edge.yaml"), description="Agent YAML (AgentConfig).")
    mqtt: EdgeMqttSettings = Field(
        default_factory=EdgeMqttSettings, description="How to reach the broker."
    )
    zigbee2mqtt: MqttSettings = Field(
        default_factory=MqttSettings,
        description="The local broker Zigbee2MQTT publishes to, when the agent YAML has a "
        "zigbee2mqtt section: IOTMON_EDGE_ZIGBEE2MQTT__HOST, __PORT, __USERNAME, __PASSWORD…",
    )


MAX_QUEUE_AGE_S = 30 * 86400
"""Ingest refuses readings older than 30 days (the contract validator's max_age)."""


class QueueConfig(BaseModel):
    """The durable on-disk queue (SQLite): where it is, how big and how old it may get."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(
        Path("/var/lib/iotmon-edge/queue.db"),
        description="Queue file (SQLite, WAL mode); relative paths are from the working "
        "directory. Its folder must be writable.",
    )
    max_bytes: ByteSize = Field(
        ByteSize(256 * 1024 * 1024),
        ge=64 * 1024,
        description="Bound on what is queued (payloads plus a per-message overhead), e.g. "
        "256MiB or 2GB. Over it the oldest messages are dropped (counted, with a warning "
        "event). The file itself may reach twice this, never more.",
    )
    max_age_s: float = Field(
        7 * 86400.0,
        gt=0,
        le=MAX_QUEUE_AGE_S,
        description="Messages queued longer are dropped (counted, with a warning event). "
        "At most 30 days: ingest refuses older readings.",
    )
    drain_rate: float = Field(
        5000.0,
        ge=0,
        description="Backlog messages per second sent after a reconnect, beside live data "
        "(which goes first); 0 = as fast as the broker acknowledges.",
    )
    max_inflight: int = Field(
        1000, ge=1, le=65_535, description="Messages sent and awaiting the broker's PUBACK."
    )
    synchronous: Synchronous = Field(
        Synchronous.FULL,
        description="full: every commit waits for the disk (a power cut loses nothing "
        "committed); normal: fewer writes for SD cards, a power cut may lose the last seconds.",
    )


class HealthConfig(BaseModel):
    """The agent's own health readings (queue, connection, process, CPU temperature)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Publish the agent's health as its telemetry.")
    interval_s: float = Field(
        60.0, ge=1, le=86400, description="Seconds between health readings (at most one a cycle)."
    )
    thermal_zone: Path | None = Field(
        THERMAL_ZONE,
        description="sysfs file with the CPU temperature in millidegrees, read when present.",
    )


class AgentConfig(BaseModel):
    """What one edge agent is and runs: the YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field("demo", pattern=IDENTIFIER_PATTERN, description="Tenant id in topics.")
    agent_id: str = Field(
        "edge-0001",
        pattern=IDENTIFIER_PATTERN,
        description="This agent's id: its status topic, and its telemetry topic in batch mode.",
    )
    publish_interval_s: float = Field(
        10.0, ge=0.05, le=86400, description="Seconds between driver reads."
    )
    mode: PublishMode = Field(PublishMode.SINGLE, description="single or batch, see PublishMode.")
    batch_max_readings: int = Field(
        1000,
        ge=1,
        le=MAX_BATCH_READINGS,
        description="Most readings in one batch message; larger cycles are split.",
    )
    drivers: list[DriverConfig] = Field(
        default_factory=list, description="Device drivers, each with a `type`."
    )
    queue: QueueConfig | None = Field(
        None,
        description="Durable store-and-forward queue on disk. Without it messages wait in "
        "memory while the broker is away and are lost if the agent stops.",
    )
    health: HealthConfig = Field(
        default_factory=HealthConfig, description="The agent's own health telemetry."
    )
    zigbee2mqtt: Zigbee2MqttConfig | None = Field(
        default=None,
        description="Bridge a local Zigbee2MQTT's devices into the contract (absent: off).",
    )

    @model_validator(mode="after")
    def _unique_devices(self) -> AgentConfig:
        seen: dict[str, int] = {}
        bridge = self.zigbee2mqtt
        if bridge is not None and bridge.is_device_id(self.agent_id):
            raise ValueError(f"agent_id {self.agent_id!r} has the form of a zigbee2mqtt device id")
        for index, driver in enumerate(self.drivers):
            for device in driver.declared_device_ids():
                if device == self.agent_id:
                    raise ValueError(f"drivers.{index} device {device!r} reuses the agent_id")
                if bridge is not None and bridge.is_device_id(device):
                    raise ValueError(
                        f"drivers.{index} device {device!r} has the form of a zigbee2mqtt "
                        f"device id ({bridge.device_prefix}-<IEEE address>)"
                    )
                if device in seen:
                    raise ValueError(
                        f"drivers.{index} device {device!r} is also in drivers.{seen[device]}"
                    )
                seen[device] = index
        return self

    def device_count(self) -> int:
        return sum(len(driver.declared_device_ids()) for driver in self.drivers)


def load_agent_config(path: Path) -> AgentConfig:
    """Read and validate an agent YAML file; raises ConfigError naming file and key path."""
    return load_yaml_model(path, AgentConfig)


def parse_agent_config(text: str, source: str = "<config>") -> AgentConfig:
    return parse_yaml_model(text, AgentConfig, source=source)


__all__ = [
    "AgentConfig",
    "ConfigError",
    "EdgeMqttSettings",
    "HealthConfig",
    "PublishMode",
    "QueueConfig",
    "Settings",
    "load_agent_config",
    "parse_agent_config",
]

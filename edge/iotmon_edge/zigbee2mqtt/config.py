"""The ``zigbee2mqtt`` section of an agent's YAML: which Zigbee2MQTT to bridge and how.

The local broker it publishes to is a process setting (``IOTMON_EDGE_ZIGBEE2MQTT__HOST``
and the rest of ``MqttSettings``), like the upstream broker: addresses and secrets
come from the environment, what the agent does from the YAML.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_PREFIX_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,40}$"


class Zigbee2MqttConfig(BaseModel):
    """Bridge one Zigbee2MQTT instance's devices into the contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_topic: str = Field(
        "zigbee2mqtt",
        min_length=1,
        max_length=200,
        description="Zigbee2MQTT's mqtt.base_topic; the bridge subscribes to <base_topic>/#.",
    )
    device_prefix: str = Field(
        "zb",
        pattern=_PREFIX_PATTERN,
        description="Contract device ids are <device_prefix>-<IEEE address in hex>, "
        "e.g. zb-00158d0001a2b3c4: stable across renames and model changes.",
    )
    pending_max_age_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="How long a message for a device not (yet) in bridge/devices is kept "
        "for when bridge/devices describes it; older ones are dropped and counted.",
    )
    pending_max_messages: int = Field(
        2000,
        ge=1,
        le=100_000,
        description="Most messages kept for undescribed devices; beyond, the oldest go.",
    )
    last_seen_max_age_s: float = Field(
        7 * 86400.0,
        gt=0,
        le=30 * 86400.0,
        description="A last_seen older than this (relative to receipt) is not believed: "
        "the reading is stamped with the time it was received.",
    )
    last_seen_max_ahead_s: float = Field(
        300.0,
        ge=0,
        le=86400.0,
        description="A last_seen this far after its receipt is not believed either.",
    )
    max_payload_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest message read; bridge/devices of a large network is a few MB.",
    )

    @field_validator("base_topic")
    @classmethod
    def _plain_topic(cls, value: str) -> str:
        if re.search(r"[+#\x00-\x1f\x7f]", value):
            raise ValueError("must not contain MQTT wildcards or control characters")
        if value.startswith("/") or value.endswith("/") or "//" in value:
            raise ValueError("must not start or end with '/' or hold an empty level")
        return value

    def device_id(self, ieee: str) -> str:
        """The contract device id of the device with this IEEE address (lower-case hex)."""
        return f"{self.device_prefix}-{ieee}"

    def is_device_id(self, device: str) -> bool:
        """Whether ``device`` has the form of this bridge's device ids."""
        return re.fullmatch(rf"{re.escape(self.device_prefix)}-[0-9a-f]{{16}}", device) is not None


__all__ = ["Zigbee2MqttConfig"]

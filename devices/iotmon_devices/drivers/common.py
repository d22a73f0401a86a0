"""What every hardware driver's config has: the device it serves and how it is retried."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_devices.base import DriverConfigBase
from iotmon_devices.faults import RetryPolicy


def device_id_field(default: str) -> Any:
    """The ``device_id`` field with a driver's own default."""
    return Field(default, pattern=IDENTIFIER_PATTERN, description="Device id in topics.")


class DeviceDriverConfig(DriverConfigBase):
    """A driver of one device: its id in topics, and its retry policy when it fails."""

    device_id: str = device_id_field("device-1")
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Backoff between retries of a failing device."
    )

    def declared_device_ids(self) -> list[str]:
        return [self.device_id]

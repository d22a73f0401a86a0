"""The union of every driver config, keyed on ``type``: what an agent's YAML ``drivers`` holds.

Adding a driver (meters, Zigbee2MQTT tag readers, I2C sensors) means adding its
config model to ``DriverConfig`` here and its factory to ``default_registry``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from iotmon_devices.simulators.environment_config import SimulatedEnvironmentConfig

# A one-member union today; pydantic still dispatches on `type`, so error
# messages and the JSON schema already have the shape they will keep.
DriverConfig = Annotated[SimulatedEnvironmentConfig, Field(discriminator="type")]

__all__ = ["DriverConfig"]

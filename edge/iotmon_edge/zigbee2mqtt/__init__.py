"""The Zigbee2MQTT bridge: a local Zigbee2MQTT's devices as contract devices of the agent.

``config`` (the YAML section), ``mapper`` (messages in, readings/actions/availability
out; pure), ``bridge`` (the subscription on the local broker), and the pure pieces the
mapper is made of: ``topics``, ``devices`` (bridge/devices), ``units``, ``timestamps``.
"""

from iotmon_edge.zigbee2mqtt.bridge import Zigbee2MqttBridge
from iotmon_edge.zigbee2mqtt.config import Zigbee2MqttConfig
from iotmon_edge.zigbee2mqtt.mapper import (
    ActionRecord,
    AvailabilityRecord,
    BridgeOutput,
    BridgeStats,
    Zigbee2MqttMapper,
)

__all__ = [
    "ActionRecord",
    "AvailabilityRecord",
    "BridgeOutput",
    "BridgeStats",
    "Zigbee2MqttBridge",
    "Zigbee2MqttConfig",
    "Zigbee2MqttMapper",
]

"""The one MQTT layer of iotmon: a client on paho-mqtt, the records it speaks in, its settings.

Nothing outside this package imports paho.
"""

from iotmon_runtime.mqtt.client import MqttClient
from iotmon_runtime.mqtt.messages import (
    ClientStats,
    Completion,
    ConnectionEvent,
    ConnectionListener,
    Handler,
    InboundMessage,
    OutgoingMessage,
    RetainHandling,
    Subscription,
)
from iotmon_runtime.mqtt.settings import MqttProtocol, MqttSettings

__all__ = [
    "ClientStats",
    "Completion",
    "ConnectionEvent",
    "ConnectionListener",
    "Handler",
    "InboundMessage",
    "MqttClient",
    "MqttProtocol",
    "MqttSettings",
    "OutgoingMessage",
    "RetainHandling",
    "Subscription",
]

"""Where the agent puts outgoing messages: the seam for a durable store-and-forward queue.

Today's ``DirectOutbox`` hands messages straight to the MQTT client (which holds a
bounded in-memory queue while disconnected). A disk-backed outbox can replace it
without the agent changing: ``put`` would persist and a worker would drain.
"""

from __future__ import annotations

from typing import Protocol

from iotmon_runtime.mqtt import MqttClient


class Outbox(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def put(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """Take a message for delivery; False when it had to be dropped."""
        ...

    def flush(self, timeout: float) -> bool:
        """Wait until what was put is delivered (or safely stored); False on timeout."""
        ...


class DirectOutbox:
    """Publishes through the MQTT client at once; nothing survives a process restart."""

    def __init__(self, client: MqttClient) -> None:
        self._client = client

    def start(self) -> None:
        """Nothing to open: the client's lifecycle belongs to the agent."""

    def stop(self) -> None:
        """Nothing to close."""

    def put(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        return self._client.publish(topic, payload, qos, retain)

    def flush(self, timeout: float) -> bool:
        return self._client.flush(timeout)

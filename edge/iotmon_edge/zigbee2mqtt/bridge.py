"""The Zigbee2MQTT bridge worker: a subscription on the local broker feeding the mapper.

Zigbee2MQTT usually publishes to a broker on the gateway itself while the agent
publishes upstream, so the bridge has an ``MqttClient`` of its own (it may point at
the same broker). It subscribes to ``<base_topic>/#`` (retained messages included:
``bridge/devices`` and availability are retained) and hands what the mapper makes
of each message to a sink. The agent's sink queues them for the agent's thread,
which encodes and publishes them through the outbox like driver readings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from iotmon_edge.zigbee2mqtt.config import Zigbee2MqttConfig
from iotmon_edge.zigbee2mqtt.mapper import (
    AvailabilityRecord,
    BridgeOutput,
    BridgeStats,
    Zigbee2MqttMapper,
)
from iotmon_runtime.mqtt import InboundMessage, MqttClient

Sink = Callable[[list[BridgeOutput]], None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Zigbee2MqttBridge:
    """Maps one Zigbee2MQTT instance's devices; thread-safe (the MQTT dispatcher thread
    handles messages, the agent's thread asks for statuses and stats)."""

    def __init__(
        self,
        config: Zigbee2MqttConfig,
        client: MqttClient,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._config = config
        self._client = client
        self._clock = clock
        self._mapper = Zigbee2MqttMapper(config)
        self._lock = threading.Lock()
        self._sink: Sink | None = None

    @property
    def config(self) -> Zigbee2MqttConfig:
        return self._config

    @property
    def client(self) -> MqttClient:
        return self._client

    def start(self, sink: Sink) -> None:
        """Subscribe and connect; ``sink`` gets the outputs of each message, on the
        client's dispatcher thread (it must only queue)."""
        self._sink = sink
        self._client.subscribe(f"{self._config.base_topic}/#", self._on_message, qos=1)
        self._client.start()

    def stop(self) -> None:
        self._client.stop()

    def tick(self, now: datetime) -> None:
        """Drop messages that waited too long for bridge/devices (also when none arrive)."""
        with self._lock:
            self._mapper.expire(now)

    @property
    def device_ids(self) -> list[str]:
        with self._lock:
            return self._mapper.device_ids

    def statuses(self, now: datetime) -> list[AvailabilityRecord]:
        with self._lock:
            return self._mapper.statuses(now)

    def shutdown(self, now: datetime) -> list[AvailabilityRecord]:
        with self._lock:
            return self._mapper.shutdown(now)

    def stats(self) -> BridgeStats:
        with self._lock:
            return self._mapper.stats()

    def _on_message(self, message: InboundMessage) -> None:
        with self._lock:
            outputs = self._mapper.handle(message.topic, message.payload, self._clock())
        if outputs and self._sink is not None:
            self._sink(outputs)


__all__ = ["Sink", "Zigbee2MqttBridge"]

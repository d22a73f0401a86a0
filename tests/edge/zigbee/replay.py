"""Zigbee2MQTT played back: a real paho client publishing fixture messages to a broker."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.edge.zigbee.fixtures import Message


class Zigbee2mqttPlayback:
    """Publishes as Zigbee2MQTT does: in order, with each message's QoS and retain flag."""

    def __init__(self, host: str, port: int) -> None:
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id="zigbee2mqtt-playback")
        self._host, self._port = host, port

    def start(self) -> None:
        self._client.connect(self._host, self._port)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def play(self, messages: Iterable[Message], timeout: float = 10.0) -> int:
        count = 0
        for message in messages:
            info = self._client.publish(
                message.topic, message.payload, qos=message.qos, retain=message.retain
            )
            info.wait_for_publish(timeout)
            count += 1
        return count

    def clear_retained(self, topics: Iterable[str]) -> None:
        for topic in topics:
            self._client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)


@contextmanager
def playback(host: str, port: int) -> Iterator[Zigbee2mqttPlayback]:
    player = Zigbee2mqttPlayback(host, port)
    player.start()
    try:
        yield player
    finally:
        player.stop()

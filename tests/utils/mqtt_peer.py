"""A raw paho MQTT 5 client for tests: an independent peer that reports the broker's
CONNACK, SUBACK and PUBACK reason codes (product code never imports paho)."""

from __future__ import annotations

import queue
import threading
import uuid
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

NOT_AUTHORIZED = 135
NO_MATCHING_SUBSCRIBERS = 16
TIMEOUT = 10.0


class Received(NamedTuple):
    topic: str
    payload: bytes
    retained: bool


class Peer:
    """Connect, subscribe and publish, each answering with the broker's reason code."""

    def __init__(
        self, port: int, username: str | None, password: str | None = None, host: str = "127.0.0.1"
    ) -> None:
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._host = host
        self._port = port
        self._connack: queue.Queue[ReasonCode] = queue.Queue()
        self._acks: dict[int, queue.Queue[ReasonCode]] = {}
        self._lock = threading.Lock()
        self.messages: queue.Queue[Received] = queue.Queue()
        self.disconnected = threading.Event()
        """Set when the broker closes the connection (e.g. the client was revoked)."""
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_ack
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def _ack_queue(self, mid: int) -> queue.Queue[ReasonCode]:
        with self._lock:
            return self._acks.setdefault(mid, queue.Queue())

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        self._connack.put(rc)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.disconnected.set()

    def _on_ack(self, client: Any, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        self._ack_queue(mid).put(rc)

    def _on_subscribe(
        self, client: Any, userdata: Any, mid: int, codes: list[ReasonCode], props: Any
    ) -> None:
        self._ack_queue(mid).put(codes[0])

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put(Received(message.topic, bytes(message.payload), bool(message.retain)))

    def connect(self) -> ReasonCode:
        self._client.connect(self._host, self._port, keepalive=30)
        self._client.loop_start()
        rc = self._connack.get(timeout=TIMEOUT)
        if rc.is_failure:
            self.close()
        return rc

    def subscribe_code(self, topic: str) -> int:
        """Subscribe at QoS 1; the SUBACK reason code (1: granted, 135: not authorised)."""
        _, mid = self._client.subscribe(topic, options=SubscribeOptions(qos=1))
        assert mid is not None
        return self._ack_queue(mid).get(timeout=TIMEOUT).value

    def subscribe(self, topic: str) -> None:
        code = self.subscribe_code(topic)
        assert code < 128, f"subscription to {topic} refused: {code}"

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK reason code (135: not authorised)."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        return self._ack_queue(info.mid).get(timeout=TIMEOUT).value

    def drain(self) -> list[Received]:
        found = []
        while not self.messages.empty():
            found.append(self.messages.get_nowait())
        return found

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

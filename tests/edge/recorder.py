"""A real paho subscriber for tests: records what a broker delivers on some filters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from iotmon_contract import DeviceStatus


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    at: float


class Recorder:
    """Subscribes inside on_connect, so it follows a broker restart like the agent does.

    ``persistent``: a session the broker keeps (and saves across its own restart), so
    messages published while the recorder is away are still recorded.
    """

    def __init__(
        self, host: str, port: int, filters: Sequence[str], *, persistent: bool = False
    ) -> None:
        self._host = host
        self._port = port
        self._filters = list(filters)
        self._persistent = persistent
        client_id = f"recorder-{uuid4().hex[:12]}" if persistent else ""
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self._client.reconnect_delay_set(1, 1)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._changed = threading.Condition()
        self._messages: list[Received] = []
        self._subscribed = 0

    def start(self, timeout: float = 10.0) -> None:
        if self._persistent:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 3600
            self._client.connect(self._host, self._port, clean_start=False, properties=properties)
        else:
            self._client.connect(self._host, self._port)
        self._client.loop_start()
        if not self.wait_for(lambda _: self._subscribed > 0, timeout):
            raise TimeoutError("subscription not acknowledged")

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def subscriptions(self) -> int:
        """How many times the subscription was acknowledged (one per connection)."""
        return self._subscribed

    def messages(self, predicate: Callable[[Received], bool] = lambda _: True) -> list[Received]:
        with self._changed:
            return [m for m in self._messages if predicate(m)]

    def wait_for(self, condition: Callable[[list[Received]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self._messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def statuses(self, topic: str) -> list[DeviceStatus]:
        return [
            DeviceStatus.model_validate_json(m.payload) for m in self.messages() if m.topic == topic
        ]

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if not reason.is_failure:
            client.subscribe([(topic, 1) for topic in self._filters])

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        with self._changed:
            self._subscribed += 1
            self._changed.notify_all()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        received = Received(
            message.topic, bytes(message.payload), bool(message.retain), message.qos, time.time()
        )
        with self._changed:
            self._messages.append(received)
            self._changed.notify_all()


@contextmanager
def recording(host: str, port: int, *filters: str, persistent: bool = False) -> Iterator[Recorder]:
    recorder = Recorder(host, port, filters, persistent=persistent)
    recorder.start()
    try:
        yield recorder
    finally:
        recorder.stop()

"""The ingest service's one MQTT transport (paho-mqtt 2.x); nothing else in ingest imports paho.

It subscribes with a persistent session and manual acknowledgement: a message's
PUBACK is sent only when the pipeline says its batch is durable, so the broker
redelivers whatever a crash left unwritten.

Throughput (see docs/benchmarks.md): stock paho costs ~40 µs per received
message, mostly building an MQTT 5 ``Properties`` object and doing three
``recv`` syscalls per packet, and acknowledging through ``Client.ack`` costs a
syscall per message. ``_FastClient`` keeps paho for connection handling but
(1) reads the socket in 256 KiB chunks, (2) decodes plain QoS 1 PUBLISH packets
(no properties, the broker's usual form) straight into the inbound queue and
(3) sends a batch's PUBACKs as one write. These touch paho internals that are
stable across 2.x (pinned <3); if they are missing the transport falls back to
paho's public API (``on_message`` and ``ack``), slower but equivalent.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from iotmon_contract import shared_subscription, status_filter, telemetry_filter
from iotmon_services.ingest.config import MqttProtocol, MqttSettings
from iotmon_services.ingest.domain import Inbound

logger = logging.getLogger(__name__)

_READ_CHUNK = 256 * 1024
_PUBACK = 0x40
# A success PUBACK without properties: the same 4 bytes in MQTT 3.1.1 and 5.
_PUBACKS = [bytes((_PUBACK, 2, mid >> 8, mid & 0xFF)) for mid in range(65_536)]
_AUTH_FAILURES = frozenset({"Bad user name or password", "Not authorized"})
_TOKEN_SHIFT = 16
_MID_MASK = 0xFFFF

_FAST_PATH_AVAILABLE = all(
    hasattr(paho.Client, name)
    for name in ("_create_socket", "_handle_publish", "_packet_queue", "loop_read")
)


class _BufferedSocket:
    """Serves paho's tiny ``recv`` calls (1 byte, 1 byte, n bytes per packet) from one big read."""

    __slots__ = ("_buffer", "_position", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = b""
        self._position = 0

    def recv(self, size: int) -> bytes:
        position = self._position
        buffer = self._buffer
        if position >= len(buffer):
            buffer = bytes(self._sock.recv(_READ_CHUNK))
            if not buffer:
                return buffer
            self._buffer = buffer
            position = 0
        end = min(position + size, len(buffer))
        self._position = end
        return buffer[position:end]

    def pending(self) -> int:
        # paho skips select() while this is positive (it does the same for TLS).
        inner = getattr(self._sock, "pending", None)
        return len(self._buffer) - self._position + (inner() if inner else 0)

    def send(self, data: bytes) -> int:
        return int(self._sock.send(data))

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def close(self) -> None:
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _IngestClient(paho.Client):
    """paho's Client plus where to deliver messages and the connection generation."""

    def __init__(self, *args: Any, deliver: Callable[[Inbound], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deliver = deliver
        self.generation = 0
        self.paused: Callable[[], bool] = _never

    def ack_many(self, mids: list[int]) -> None:
        for mid in mids:
            self.ack(mid, 1)


def _never() -> bool:
    return False


class _FastClient(_IngestClient):
    """The cheaper receive and acknowledge path described in the module docstring."""

    def _create_socket(self) -> Any:
        return _BufferedSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        if self.paused():
            # Back-pressure: leave bytes in the kernel so TCP slows the broker down.
            time.sleep(0.01)
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        # paho reads one packet per select(); go on while the buffer holds more.
        rc = super().loop_read(max_packets)
        budget = 100_000
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and budget:
            sock = self._sock
            if not isinstance(sock, _BufferedSocket) or sock.pending() <= 0:
                break
            rc = super().loop_read(max_packets)
            budget -= 1
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        header: int = self._in_packet["command"]
        packet: bytearray = self._in_packet["packet"]
        if header & 0x06 != 0x02:  # not QoS 1: let paho do it
            return super()._handle_publish()
        topic_end = 2 + ((packet[0] << 8) | packet[1])
        body = topic_end + 2
        if self._protocol == MQTTProtocolVersion.MQTTv5:
            if packet[body] != 0:  # has properties: paho decodes them
                return super()._handle_publish()
            body += 1
        try:
            topic = packet[2:topic_end].decode()
        except UnicodeDecodeError:
            return super()._handle_publish()
        mid = (packet[topic_end] << 8) | packet[topic_end + 1]
        self.deliver(
            (topic, bytes(packet[body:]), (self.generation << _TOKEN_SHIFT) | mid, bool(header & 1))
        )
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: list[int]) -> None:
        # One write for the whole batch; paho's own queue keeps packets whole and
        # in order with its other writes.
        self._packet_queue(_PUBACK, b"".join([_PUBACKS[mid] for mid in mids]), 0, 0)


class _QuietAfterDisconnect(logging.Filter):
    """paho logs an ERROR from its loop once our own disconnect closed the socket; drop it."""

    def __init__(self) -> None:
        super().__init__()
        self.stopping = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.stopping and record.getMessage().startswith("Client is not connected"))


class IngestTransport:
    """Connects, subscribes (shared telemetry + status), delivers messages, sends acks.

    ``deliver`` is called on paho's network thread for every message and must
    only enqueue. Ack tokens carry the connection generation: acks for messages
    of an older connection are dropped (the broker redelivers those, and
    writing a reading twice is harmless — same series and timestamp).
    """

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        deliver: Callable[[Inbound], None],
        *,
        paused: Callable[[], bool] | None = None,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._client_id = client_id
        self._deliver = deliver
        self._paused = paused
        self._on_fatal = on_fatal
        self._fast_path = settings.fast_path and _FAST_PATH_AVAILABLE
        self._client: _IngestClient | None = None
        self._lock = threading.Lock()
        self._generation = 0
        self.connected = threading.Event()
        self.failure: str | None = None
        self.subscribed = threading.Event()
        self._log_filter = _QuietAfterDisconnect()

    @property
    def fast_path(self) -> bool:
        return self._fast_path

    def start(self) -> None:
        settings = self._settings
        v5 = settings.protocol is MqttProtocol.V5
        client_class = _FastClient if self._fast_path else _IngestClient
        client = client_class(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
            deliver=self._deliver,
        )
        if self._paused is not None:
            client.paused = self._paused
        paho_logger = logging.getLogger(f"iotmon.ingest.paho.{self._client_id}")
        paho_logger.addFilter(self._log_filter)
        client.enable_logger(paho_logger)
        client.reconnect_delay_set(settings.reconnect_min_delay_s, settings.reconnect_max_delay_s)
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else None
            client.username_pw_set(settings.username, password)
        if settings.tls:
            context = ssl.create_default_context(
                cafile=str(settings.ca_file) if settings.ca_file else None
            )
            client.tls_set_context(context)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        properties = None
        if v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = settings.session_expiry_s
            properties.ReceiveMaximum = settings.receive_maximum
        # connect_async + loop_start: paho retries the first connection too, with back-off.
        client.connect_async(
            settings.host,
            settings.port,
            keepalive=settings.keepalive_s,
            clean_start=False if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        client.loop_start()

    def stop(self) -> None:
        client = self._client
        if client is None:
            return
        # Queued acks are written before DISCONNECT: paho sends its queue in order.
        self._log_filter.stopping = True
        client.disconnect()
        client.loop_stop()
        self.connected.clear()

    # -- used by the pipeline (any thread) --------------------------------------

    def ack(self, tokens: Iterable[int]) -> int:
        """Acknowledge messages by token; returns how many acks were sent."""
        client = self._client
        if client is None:
            return 0
        with self._lock:
            generation = self._generation
            mids = [
                token & _MID_MASK
                for token in tokens
                if token >> _TOKEN_SHIFT == generation and token & _MID_MASK
            ]
            if not mids:
                return 0
            client.ack_many(mids)
        return len(mids)

    def publish(self, topic: str, payload: bytes | str, qos: int, retain: bool = False) -> None:
        client = self._client
        if client is not None:
            client.publish(topic, payload, qos=qos, retain=retain)

    # -- paho callbacks (network thread: no I/O here) ----------------------------

    def _subscriptions(self) -> list[tuple[str, Any]]:
        settings = self._settings
        if settings.protocol is not MqttProtocol.V5:
            # amqtt (3.1.1 only) has no shared subscriptions: one replica.
            subscriptions: list[tuple[str, Any]] = [(telemetry_filter(), 1)]
            if settings.subscribe_status:
                subscriptions.append((status_filter(), 1))
            return subscriptions
        telemetry = shared_subscription(settings.share_group, telemetry_filter())
        subscriptions = [(telemetry, SubscribeOptions(qos=1))]
        if settings.subscribe_status:
            # Retained statuses only when the subscription is new: a resumed
            # session already has them stored.
            subscriptions.append((status_filter(), SubscribeOptions(qos=1, retainHandling=1)))
        return subscriptions

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            if reason_code.getName() in _AUTH_FAILURES:
                self.failure = f"broker refused the connection: {reason_code.getName()}"
                logger.error("%s; not retrying", self.failure)
                self._log_filter.stopping = True
                client.disconnect()  # ends paho's loop: retrying cannot fix credentials
                if self._on_fatal is not None:
                    self._on_fatal(self.failure)
            else:
                logger.warning("broker refused the connection: %s", reason_code.getName())
            return
        with self._lock:
            self._generation += 1
            cast(_IngestClient, client).generation = self._generation
        logger.info(
            "connected to %s:%s as %s (session %s)",
            self._settings.host,
            self._settings.port,
            self._client_id,
            "resumed" if flags.session_present else "new",
        )
        client.subscribe(self._subscriptions())
        self.connected.set()

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        with self._lock:
            # Acks still pending for this connection must not reach the next one.
            self._generation += 1
        self.connected.clear()
        self.subscribed.clear()
        if reason_code.is_failure:
            logger.warning("disconnected from the broker: %s", reason_code.getName())

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        _mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        refused = [code.getName() for code in reason_codes if code.is_failure]
        if refused:
            logger.error("broker refused a subscription: %s", ", ".join(refused))
        else:
            self.subscribed.set()

    def _on_message(self, client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        # Messages the fast path leaves to paho (QoS 0, PUBLISH with properties, fallback).
        generation = cast(_IngestClient, client).generation
        token = (generation << _TOKEN_SHIFT) | message.mid if message.qos == 1 else 0
        self._deliver((message.topic, bytes(message.payload), token, bool(message.retain)))

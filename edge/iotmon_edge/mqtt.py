"""The edge agent's one MQTT transport: paho-mqtt behind a small, thread-safe interface.

Business code never imports paho. Callbacks only record state and notify a
listener that must not block; publishing happens on the caller's thread.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from iotmon_edge.messages import OutgoingMessage

logger = logging.getLogger(__name__)

# CONNACK refusals that retrying cannot fix; paho maps MQTT 3.1.1 return codes
# 4 and 5 to these same v5 names.
_AUTH_FAILURES = frozenset({"Bad user name or password", "Not authorized"})


class MqttProtocol(StrEnum):
    V5 = "5"
    V311 = "3.1.1"
    """For brokers without MQTT 5, e.g. the embedded amqtt broker of the demo."""


class ConnectionEvent(Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    FAILED = "failed"
    """Refused for good (bad credentials): the transport stopped retrying."""


@dataclass(frozen=True, slots=True)
class MqttOptions:
    host: str
    port: int
    client_id: str
    protocol: MqttProtocol = MqttProtocol.V5
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_ca_file: Path | None = None
    keepalive_s: int = 30
    reconnect_min_s: int = 1
    reconnect_max_s: int = 60
    max_inflight: int = 1000
    """QoS 1 messages awaiting PUBACK; paho's default of 20 caps throughput at 20 per RTT."""
    max_queued: int = 100_000
    """Messages held while disconnected; beyond it publishes are refused (0 = no limit)."""


@dataclass(frozen=True, slots=True)
class TransportStats:
    accepted: int
    """Messages handed to paho (sent, or kept by paho across a dropped connection)."""
    refused: int
    """Messages refused: the hold queue or paho's queue was full."""
    completed: int
    """QoS 1: PUBACK received; QoS 0: written to the socket."""
    rejected: int
    """MQTT 5: the broker acknowledged with a failure reason (e.g. not authorised)."""
    connects: int
    held: int
    """Messages waiting for a connection."""


ConnectionListener = Callable[[ConnectionEvent], None]


class MqttTransport:
    """Connects in the background, reconnects with backoff, publishes thread-safely."""

    def __init__(self, options: MqttOptions, *, will: OutgoingMessage | None = None) -> None:
        self._options = options
        self._will = will
        self._client: paho.Client | None = None
        self._listener: ConnectionListener | None = None
        self._connected = threading.Event()
        self._lock = threading.Condition()
        # One sender at a time keeps held messages ahead of new ones.
        self._send_lock = threading.Lock()
        self._held: deque[OutgoingMessage] = deque()
        self._accepted = 0
        self._refused = 0
        self._completed = 0
        self._rejected = 0
        self._connects = 0
        self._failure: str | None = None

    @property
    def options(self) -> MqttOptions:
        return self._options

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def failure(self) -> str | None:
        """Why the transport gave up for good, or None."""
        return self._failure

    def set_listener(self, listener: ConnectionListener | None) -> None:
        """``listener`` runs on paho's thread: it must only record or signal, never block."""
        self._listener = listener

    def start(self) -> None:
        if self._client is not None:
            raise RuntimeError("transport already started")
        options = self._options
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            protocol=(
                MQTTProtocolVersion.MQTTv5
                if options.protocol is MqttProtocol.V5
                else MQTTProtocolVersion.MQTTv311
            ),
        )
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.reconnect_delay_set(options.reconnect_min_s, options.reconnect_max_s)
        client.max_inflight_messages_set(options.max_inflight)
        client.max_queued_messages_set(options.max_queued)
        if options.username is not None:
            client.username_pw_set(options.username, options.password)
        if options.tls:
            client.tls_set(
                ca_certs=str(options.tls_ca_file) if options.tls_ca_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        if self._will is not None:
            client.will_set(self._will.topic, self._will.payload, self._will.qos, self._will.retain)
        self._client = client
        # connect_async + loop_start: the first connection is retried like any
        # other, so an agent can boot before its broker.
        client.connect_async(options.host, options.port, keepalive=options.keepalive_s)
        client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly (the broker discards the last will) and end paho's thread."""
        client = self._client
        if client is None:
            return
        client.disconnect()
        client.loop_stop()
        self._client = None
        self._connected.clear()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """Send, or hold until connected; False when refused (queue full, not started)."""
        if self._client is None:
            with self._lock:
                self._refused += 1
            return False
        with self._send_lock:
            if not self._connected.is_set():
                return self._hold(OutgoingMessage(topic, payload, qos, retain))
            self._release_held()
            return self._send(topic, payload, qos, retain)

    def flush(self, timeout: float) -> bool:
        """Wait until every message taken is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._send_lock:
                if self._connected.is_set():
                    self._release_held()
            with self._lock:
                remaining = deadline - time.monotonic()
                if self._lock.wait_for(self._all_acknowledged, min(max(remaining, 0), 0.1)):
                    return True
            if remaining <= 0:
                return False

    def stats(self) -> TransportStats:
        with self._lock:
            return TransportStats(
                self._accepted,
                self._refused,
                self._completed,
                self._rejected,
                self._connects,
                len(self._held),
            )

    def _hold(self, message: OutgoingMessage) -> bool:
        # Held here rather than in paho: paho writes a publish to a socket that is
        # still waiting for its CONNACK, and if the broker refuses the login that
        # write can reset the connection before the refusal is read, so the auth
        # failure would look like a network error and be retried.
        with self._lock:
            if self._options.max_queued and len(self._held) >= self._options.max_queued:
                self._refused += 1
                return False
            self._held.append(message)
            return True

    def _release_held(self) -> None:
        """Send what was held while disconnected, oldest first (caller holds _send_lock)."""
        while self._held and self._connected.is_set():
            with self._lock:
                message = self._held.popleft()
            self._send(message.topic, message.payload, message.qos, message.retain)

    def _send(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        client = self._client
        if client is None:
            return False
        info = client.publish(topic, payload, qos=qos, retain=retain)
        # NO_CONN with QoS > 0: the connection dropped just now and paho keeps the
        # message for the next one, so it is taken.
        ok = info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            qos > 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN
        )
        with self._lock:
            if ok:
                self._accepted += 1
            else:
                self._refused += 1
        return ok

    def _all_acknowledged(self) -> bool:
        return not self._held and self._completed + self._rejected >= self._accepted

    # paho callbacks: record, signal, return (they run on paho's network thread).

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        if reason_code.is_failure:
            if reason_code.getName() in _AUTH_FAILURES:
                self._failure = f"MQTT broker {self._address} refused the login: {reason_code}"
                logger.error("%s; not retrying", self._failure)
                # disconnect() from a callback is paho's way to end loop_forever's retries.
                client.disconnect()
                self._notify(ConnectionEvent.FAILED)
            else:
                logger.warning("MQTT broker %s refused: %s; retrying", self._address, reason_code)
            return
        with self._lock:
            self._connects += 1
        self._connected.set()
        logger.info("connected to MQTT broker %s", self._address)
        self._notify(ConnectionEvent.CONNECTED)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        logger.warning("cannot reach MQTT broker %s; retrying", self._address)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected:
            if reason_code.is_failure:
                logger.warning("lost MQTT broker %s: %s", self._address, reason_code)
            else:
                logger.info("disconnected from MQTT broker %s", self._address)
            self._notify(ConnectionEvent.DISCONNECTED)

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        with self._lock:
            if reason_code.is_failure:
                self._rejected += 1
            else:
                self._completed += 1
            self._lock.notify_all()

    @property
    def _address(self) -> str:
        return f"{self._options.host}:{self._options.port}"

    def _notify(self, event: ConnectionEvent) -> None:
        listener = self._listener
        if listener is not None:
            listener(event)

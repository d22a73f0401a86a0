"""paho's Client, specialised: connection-error capture, back-pressure and the receive fast path.

Only ``iotmon_runtime.mqtt`` imports paho. ``PahoClient`` adds what the wrapper
needs from paho's loop (why a connection attempt failed, a pause switch);
``FastPahoClient`` is the cheaper receive and acknowledge path that ingest's
throughput rests on (figures in docs/benchmarks.md). Stock paho costs ~40 µs per
received message, mostly building an MQTT 5 ``Properties`` object and three
``recv`` syscalls per packet, and acknowledging through ``Client.ack`` costs a
syscall per message. The fast path keeps paho for connection handling but
(1) reads the socket in 256 KiB chunks, (2) decodes plain QoS 0 and 1 PUBLISH packets
(no properties, the broker's usual form) straight into ``deliver`` and
(3) sends a batch of PUBACKs as one write. It touches paho internals that are
stable across 2.x (pinned <3); ``fast_path_available`` says whether they exist,
and without them the client uses paho's public API (slower, equivalent).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

from iotmon_runtime.mqtt.messages import InboundMessage

READ_CHUNK = 256 * 1024
TOKEN_SHIFT = 16
MID_MASK = 0xFFFF
_PUBACK = 0x40
_PAUSE_S = 0.01


@functools.cache
def _pubacks() -> list[bytes]:
    """A success PUBACK without properties per message id: the same 4 bytes in MQTT 3.1.1
    and 5. Built on first use: 65,536 bytes objects weigh ~3 MB, which a client that
    never takes the fast path (the edge agent) should not carry."""
    return [bytes((_PUBACK, 2, mid >> 8, mid & 0xFF)) for mid in range(65_536)]


def fast_path_available() -> bool:
    return all(
        hasattr(paho.Client, name)
        for name in ("_create_socket", "_handle_publish", "_packet_queue", "loop_read")
    )


def _never() -> bool:
    return False


def _drop(message: InboundMessage) -> None:
    """Where messages go before the wrapper sets ``deliver``."""


class BufferedSocket:
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
            buffer = bytes(self._sock.recv(READ_CHUNK))
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


class PahoClient(paho.Client):
    """paho's Client plus the connection generation, a pause switch and the last socket error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deliver: Callable[[InboundMessage], None] = _drop
        self.generation = 0
        self.paused: Callable[[], bool] = _never
        self.last_socket_error: OSError | None = None

    def _create_socket(self) -> Any:
        # paho swallows the reason a connection attempt failed; keep it for the log line.
        try:
            sock = super()._create_socket()
        except OSError as exc:
            self.last_socket_error = exc
            raise
        self.last_socket_error = None
        return sock

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        if self.paused():
            # Back-pressure: leave bytes in the kernel so TCP slows the broker down.
            time.sleep(_PAUSE_S)
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super().loop_read(max_packets)

    def ack_many(self, mids: list[int]) -> None:
        for mid in mids:
            self.ack(mid, 1)


class FastPahoClient(PahoClient):
    """The buffered read, direct decode and grouped PUBACK path (module docstring)."""

    def _create_socket(self) -> Any:
        return BufferedSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        if self.paused():
            time.sleep(_PAUSE_S)
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        # paho reads one packet per select(); go on while the buffer holds more.
        rc = paho.Client.loop_read(self, max_packets)
        budget = 100_000
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and budget:
            sock = self._sock
            if not isinstance(sock, BufferedSocket) or sock.pending() <= 0:
                break
            rc = paho.Client.loop_read(self, max_packets)
            budget -= 1
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        header: int = self._in_packet["command"]
        packet: bytearray = self._in_packet["packet"]
        qos = (header >> 1) & 0x03
        if qos > 1:  # QoS 2: let paho do it
            return super()._handle_publish()
        topic_end = 2 + ((packet[0] << 8) | packet[1])
        # QoS 0 has no packet id (and nothing to acknowledge: token 0, as on paho's path)
        body = topic_end + 2 * qos
        if self._protocol == MQTTProtocolVersion.MQTTv5:
            if packet[body] != 0:  # has properties: paho decodes them
                return super()._handle_publish()
            body += 1
        try:
            topic = packet[2:topic_end].decode()
        except UnicodeDecodeError:
            return super()._handle_publish()
        if qos:
            mid = (packet[topic_end] << 8) | packet[topic_end + 1]
            token = (self.generation << TOKEN_SHIFT) | mid
        else:
            token = 0
        self.deliver(
            tuple.__new__(InboundMessage, (topic, bytes(packet[body:]), token, bool(header & 1)))
        )
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: list[int]) -> None:
        # One write for the whole batch; paho's own queue keeps packets whole and
        # in order with its other writes.
        table = _pubacks()
        self._packet_queue(_PUBACK, b"".join([table[mid] for mid in mids]), 0, 0)

"""paho's Client, specialised: connection-error capture, back-pressure and the receive fast path.

Only ``iotmon_runtime.mqtt`` imports paho. ``PahoClient`` adds what the wrapper
needs from paho's loop (why a connection attempt failed, a pause switch);
``FastPahoClient`` is the cheaper receive and acknowledge path that ingest's
throughput rests on (figures in docs/benchmarks.md). Stock paho costs ~40 µs per
received message, mostly building an MQTT 5 ``Properties`` object, three ``recv``
syscalls and a dozen Python calls per packet; acknowledging through ``Client.ack``
costs a syscall per message. The fast path keeps paho for connecting, keep-alive,
subscriptions and every packet but one kind: it (1) reads the socket in 256 KiB
chunks, (2) cuts every whole packet out of a chunk in one loop and decodes plain
QoS 0 and 1 PUBLISH packets (no properties, the broker's usual form) straight into
``deliver``, handing any other packet to paho's own handler, and (3) sends a batch
of PUBACKs as one write. It touches paho internals that are stable across 2.x
(pinned <3); ``fast_path_available`` says whether they exist, and without them the
client uses paho's public API (slower, equivalent).
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket

if TYPE_CHECKING:
    from paho.mqtt.client import _InPacket

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
        for name in (
            "_create_socket",
            "_packet_handle",
            "_packet_queue",
            "_loop_rc_handle",
            "_easy_log",
            "_call_socket_register_write",
        )
    ) and hasattr(paho, "time_func")


def _never() -> bool:
    return False


def _drop(message: InboundMessage) -> None:
    """Where messages go before the wrapper sets ``deliver``."""


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


def _in_packet(command: int = 0, length: int = 0, packet: bytes = b"") -> _InPacket:
    """paho's record of the packet being read: a whole one, or reset (as paho resets it)."""
    return {
        "command": command,
        "have_remaining": 1 if command else 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": length,
        "packet": bytearray(packet),
        "to_process": 0,
        "pos": 0,
    }


class FastPahoClient(PahoClient):
    """The chunked read, in-loop decode and grouped PUBACK path (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._partial = b""
        """The start of a packet the last chunk ended in."""

    def _create_socket(self) -> Any:
        self._partial = b""  # a new connection starts at a packet boundary
        return super()._create_socket()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        if self.paused():
            # Back-pressure: leave bytes in the kernel so TCP slows the broker down.
            time.sleep(_PAUSE_S)
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        sock = self._sock
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        try:
            chunk = sock.recv(READ_CHUNK)
        except (BlockingIOError, ssl.SSLWantReadError):
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except ssl.SSLWantWriteError:
            self._call_socket_register_write()
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except OSError as err:
            self._easy_log(paho.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if not chunk:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        with self._msgtime_mutex:
            self._last_bytes_received = paho.time_func()
        data = self._partial + chunk if self._partial else chunk
        rc = self._read_packets(data, sock)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return self._loop_rc_handle(rc)
        return rc

    def _read_packets(self, data: bytes, sock: Any) -> MQTTErrorCode:
        """Every whole packet in ``data``; what is left of it waits for the next chunk."""
        deliver = self.deliver
        generation = self.generation << TOKEN_SHIFT
        v5 = self._protocol == MQTTProtocolVersion.MQTTv5
        new_message = tuple.__new__
        end = len(data)
        position = 0
        while end - position >= 2:
            header = data[position]
            length = data[position + 1]
            start = position + 2
            if length & 0x80:  # a longer remaining length: up to four bytes in all
                length &= 0x7F
                shift = 7
                while True:
                    if start >= end:
                        self._partial = data[position:]
                        return MQTTErrorCode.MQTT_ERR_SUCCESS
                    byte = data[start]
                    start += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                    shift += 7
                    if shift > 21:
                        return MQTTErrorCode.MQTT_ERR_PROTOCOL
            stop = start + length
            if stop > end:
                break
            position = stop
            # PUBLISH at QoS 0 or 1 (any DUP and RETAIN): the hot path. QoS 0 has no packet
            # id and nothing to acknowledge: token 0, as on paho's own path.
            kind = header & 0xF6
            if (kind == 0x32 or kind == 0x30) and length >= 2:
                qos1 = kind == 0x32
                topic_end = start + 2 + ((data[start] << 8) | data[start + 1])
                body = topic_end + 2 if qos1 else topic_end
                if body <= stop and (not v5 or (body < stop and data[body] == 0)):
                    try:
                        topic = data[start + 2 : topic_end].decode()
                    except UnicodeDecodeError:
                        pass
                    else:
                        token = (
                            generation | ((data[topic_end] << 8) | data[topic_end + 1])
                            if qos1
                            else 0
                        )
                        payload = data[body + 1 if v5 else body : stop]
                        deliver(
                            new_message(InboundMessage, (topic, payload, token, bool(header & 1)))
                        )
                        continue
            # Anything else is paho's, handled exactly as its own reader would.
            self._in_packet = _in_packet(header, length, data[start:stop])
            try:
                rc = self._packet_handle()
            except MalformedPacket as exc:
                self._easy_log(paho.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
                rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
            self._in_packet = _in_packet()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._sock is not sock:
                self._partial = b""
                return rc
            # A CONNACK starts a new generation of tokens: the messages after it in
            # this chunk (a resumed session's backlog) belong to it.
            generation = self.generation << TOKEN_SHIFT
        self._partial = data[position:]
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: list[int]) -> None:
        # One write for the whole batch; paho's own queue keeps packets whole and
        # in order with its other writes.
        table = _pubacks()
        self._packet_queue(_PUBACK, b"".join([table[mid] for mid in mids]), 0, 0)

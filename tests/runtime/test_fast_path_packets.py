"""The fast path's packet reader cuts a byte stream into the same messages wherever the
socket's chunks happen to end: inside a remaining-length field, a topic, a payload.

A socket that hands out predetermined chunks stands in for the broker's TCP stream (the
real broker is in test_mqtt_client.py, where chunk ends fall where the kernel puts them).
"""

from __future__ import annotations

import random
from itertools import pairwise
from typing import Any

import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from iotmon_runtime.mqtt import InboundMessage
from iotmon_runtime.mqtt.paho_client import TOKEN_SHIFT, FastPahoClient

PINGRESP = b"\xd0\x00"


def remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def publish(topic: str, payload: bytes, mid: int, *, retain: bool, v5: bool) -> bytes:
    name = topic.encode()
    variable = len(name).to_bytes(2, "big") + name + mid.to_bytes(2, "big")
    if v5:
        variable += b"\x00"  # no properties
    body = variable + payload
    return bytes([0x32 | (1 if retain else 0)]) + remaining_length(len(body)) + body


class ChunkedSocket:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def recv(self, size: int) -> bytes:
        if not self.chunks:
            raise BlockingIOError
        return self.chunks.pop(0)

    def pending(self) -> int:
        return 0

    def close(self) -> None:
        self.chunks = []


def read_all(stream: bytes, cuts: list[int], *, v5: bool) -> list[InboundMessage]:
    client = FastPahoClient(
        CallbackAPIVersion.VERSION2,
        client_id="reader",
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        manual_ack=True,
    )
    received: list[InboundMessage] = []
    client.deliver = received.append
    client.generation = 3
    bounds = [0, *sorted(cuts), len(stream)]
    chunks = [stream[a:b] for a, b in pairwise(bounds) if b > a]
    sock: Any = ChunkedSocket(chunks)
    client._sock = sock
    client._ping_t = 1  # a PINGRESP is expected
    while sock.chunks:
        client.loop_read()
    return received


MESSAGES = [
    ("iotmon/v1/acme/dev-1/telemetry", b'{"metric":"t","value":1}', 1, False),
    ("iotmon/v1/acme/dev-2/telemetry", b"", 2, True),
    ("iotmon/v1/acme/gw-1/telemetry", b"x" * 200, 3, False),  # two-byte length
    ("iotmon/v1/acme/gw-2/telemetry", bytes(range(256)) * 70, 65_535, False),  # three bytes
    ("iotmon/v1/acme/déjà/telemetry", b"\x00\xff", 5, False),
]


@pytest.mark.parametrize("v5", [False, True], ids=["3.1.1", "5"])
def test_every_chunk_boundary_gives_the_same_messages(v5: bool) -> None:
    packets = [publish(t, p, m, retain=r, v5=v5) for t, p, m, r in MESSAGES]
    stream = b"".join(packets[:2]) + PINGRESP + b"".join(packets[2:])
    expected = [
        InboundMessage(topic, payload, (3 << TOKEN_SHIFT) | mid, retain)
        for topic, payload, mid, retain in MESSAGES
    ]
    assert read_all(stream, [], v5=v5) == expected
    small = len(packets[0]) + len(packets[1]) + len(PINGRESP) + len(packets[2]) + 8
    for cut in range(1, small):  # every position in the first packets, one cut
        assert read_all(stream, [cut], v5=v5) == expected, cut
    chance = random.Random(7)
    for _ in range(200):  # many cuts anywhere, down to one byte per chunk
        cuts = chance.sample(range(1, len(stream)), chance.randint(1, 40))
        assert read_all(stream, cuts, v5=v5) == expected, cuts
    assert read_all(stream, list(range(1, len(stream), 997)), v5=v5) == expected

"""Where the agent puts outgoing messages: the seam between the agent and delivery.

``DurableOutbox`` (``durable_outbox``) commits every message to an on-disk queue
before publishing it and keeps it until the broker acknowledged it: what a
deployment uses. ``DirectOutbox`` hands messages straight to the MQTT client
(which holds a bounded in-memory queue while disconnected): nothing survives a
restart; for tests, demos and agents configured without a ``queue``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from iotmon_runtime.mqtt import MqttClient, OutgoingMessage


@dataclass(frozen=True, slots=True)
class OutboxStats:
    durable: bool
    depth: int
    """Messages taken and not yet acknowledged by the broker."""
    bytes: int
    """What the queued messages count against the bound (0 for an in-memory outbox)."""
    oldest_age_s: float | None
    """Seconds since the oldest queued message was taken; None when the queue is empty."""
    in_flight: int
    """Sent, awaiting the broker's acknowledgement."""
    delivered: int
    """Acknowledged by the broker since start."""
    rejected: int
    """Refused by the broker (an MQTT 5 reason code), deleted."""
    refused: int
    """Puts refused because the outbox was full."""
    dropped: int
    """Messages dropped by the bound (oldest first), over the queue's lifetime."""
    dropped_bytes: int
    errors: int
    """Rounds of the outbox that failed (disk errors); it retries."""


class Outbox(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def put(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """Take a message for delivery; False when it had to be dropped."""
        ...

    def put_many(
        self, messages: Sequence[OutgoingMessage], sequences: Mapping[str, int] | None = None
    ) -> int:
        """Take messages together with the sequence counters that numbered them
        (stored atomically by a durable outbox); returns how many were taken."""
        ...

    def sequences(self) -> dict[str, int]:
        """Next sequence number per stream as last stored (empty when nothing persists)."""
        ...

    def flush(self, timeout: float) -> bool:
        """Wait until what was put is delivered (or safely stored); False on timeout."""
        ...

    def stats(self) -> OutboxStats: ...

    def alive(self, within_s: float) -> bool:
        """Whether the outbox is working (its thread went round within ``within_s``)."""
        ...


class DirectOutbox:
    """Publishes through the MQTT client at once; nothing survives a process restart."""

    def __init__(self, client: MqttClient) -> None:
        self._client = client
        self._refused = 0

    def start(self) -> None:
        """Nothing to open: the client's lifecycle belongs to the agent."""

    def stop(self) -> None:
        """Nothing to close."""

    def put(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        ok = self._client.publish(topic, payload, qos, retain)
        if not ok:
            self._refused += 1
        return ok

    def put_many(
        self, messages: Sequence[OutgoingMessage], sequences: Mapping[str, int] | None = None
    ) -> int:
        return sum(self.put(m.topic, m.payload, m.qos, m.retain) for m in messages)

    def sequences(self) -> dict[str, int]:
        return {}

    def flush(self, timeout: float) -> bool:
        return self._client.flush(timeout)

    def alive(self, within_s: float) -> bool:
        return True

    def stats(self) -> OutboxStats:
        client = self._client.stats()
        waiting = client.held + max(0, client.accepted - client.completed - client.rejected)
        return OutboxStats(
            durable=False,
            depth=waiting,
            bytes=0,
            oldest_age_s=None,
            in_flight=max(0, client.accepted - client.completed - client.rejected),
            delivered=client.completed,
            rejected=client.rejected,
            refused=self._refused,
            dropped=0,
            dropped_bytes=0,
            errors=0,
        )

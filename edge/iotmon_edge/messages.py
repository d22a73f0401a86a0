"""Turn driver readings, events and availability into contract messages (pure: no I/O)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from iotmon_contract import (
    MAX_PAYLOAD_BYTES,
    DeviceEvent,
    DeviceState,
    DeviceStatus,
    MessageKind,
    Reading,
    ReadingBatch,
    event_topic,
    status_topic,
    telemetry_topic,
    topic_rule,
)
from iotmon_devices import DeviceReading
from iotmon_runtime.mqtt import OutgoingMessage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Encoded:
    messages: list[OutgoingMessage]
    invalid: int
    """Readings dropped because they break the contract (a driver bug, logged)."""


def status_message(
    tenant: str, device: str, state: DeviceState, ts: datetime | None, agent: str
) -> OutgoingMessage:
    """Retained availability; ``ts=None`` is the last-will form (the broker sends it later)."""
    rule = topic_rule(MessageKind.STATUS)
    payload = DeviceStatus(state=state, ts=ts, agent=agent).model_dump_json(exclude_none=True)
    return OutgoingMessage(status_topic(tenant, device), payload.encode(), rule.qos, rule.retain)


class SequenceBook:
    """The next sequence number of each stream an agent numbers, and which changed.

    Streams: ``telemetry:<device>`` (single readings), ``batch`` (the agent's
    ``ReadingBatch`` messages), ``event:<device>``. A durable outbox stores the
    changes in the transaction that stores the messages they numbered, and the
    book is restored from it at start: numbering goes on across restarts, so a
    message sent twice is recognisable and a lost one leaves a gap.
    """

    def __init__(self, saved: Mapping[str, int] | None = None) -> None:
        self._next: dict[str, int] = dict(saved or {})
        self._changed: dict[str, int] = {}

    def restore(self, saved: Mapping[str, int]) -> None:
        self._next.update(saved)

    def peek(self, stream: str) -> int:
        return self._next.get(stream, 0)

    def advance(self, stream: str) -> int:
        """Use the next number of ``stream``; returns it."""
        number = self._next.get(stream, 0)
        self._next[stream] = self._changed[stream] = number + 1
        return number

    def changes(self) -> dict[str, int]:
        """Streams advanced since the last call, with their next number."""
        changed, self._changed = self._changed, {}
        return changed


def telemetry_stream(device: str) -> str:
    return f"telemetry:{device}"


def event_stream(device: str) -> str:
    return f"event:{device}"


BATCH_STREAM = "batch"

_EVENT_ADAPTER: TypeAdapter[DeviceEvent] = TypeAdapter(DeviceEvent)


class EventEncoder:
    """Device events on ``.../<device>/event``, numbered per device."""

    def __init__(self, tenant: str, sequences: SequenceBook | None = None) -> None:
        self._tenant = tenant
        self._sequences = sequences if sequences is not None else SequenceBook()

    def encode(self, device: str, fields: Mapping[str, Any]) -> OutgoingMessage | None:
        """The event ``fields`` (``type``, ``ts`` and the type's own; not ``seq``) as a
        message, or None (logged) when they break the contract."""
        stream = event_stream(device)
        try:
            topic = event_topic(self._tenant, device)
            event = _EVENT_ADAPTER.validate_python({**fields, "seq": self._sequences.peek(stream)})
        except (ValidationError, ValueError) as exc:
            logger.warning("dropping invalid event of %s: %s", device, exc)
            return None
        self._sequences.advance(stream)
        rule = topic_rule(MessageKind.EVENT)
        payload = event.model_dump_json(exclude_none=True).encode()
        return OutgoingMessage(topic, payload, rule.qos, rule.retain)


class TelemetryEncoder:
    """Encodes one agent's readings, numbering them in a ``SequenceBook``."""

    def __init__(
        self,
        tenant: str,
        agent_id: str,
        batch_max_readings: int,
        sequences: SequenceBook | None = None,
    ) -> None:
        self._tenant = tenant
        self._agent_id = agent_id
        self._batch_max_readings = batch_max_readings
        self._sequences = sequences if sequences is not None else SequenceBook()
        self._topics: dict[str, str] = {}

    def singles(self, readings: Iterable[DeviceReading]) -> Encoded:
        """One message per reading on the reading's device telemetry topic."""
        rule = topic_rule(MessageKind.TELEMETRY)
        messages: list[OutgoingMessage] = []
        invalid = 0
        sequences = self._sequences
        for reading in readings:
            stream = telemetry_stream(reading.device)
            try:
                topic = self._topic(reading.device)
                payload = reading.to_single(sequences.peek(stream)).model_dump_json(
                    exclude_none=True
                )
            except (ValidationError, ValueError) as exc:
                invalid += 1
                logger.warning("dropping invalid reading %r: %s", reading, exc)
                continue
            sequences.advance(stream)
            messages.append(OutgoingMessage(topic, payload.encode(), rule.qos, rule.retain))
        return Encoded(messages, invalid)

    def batches(self, readings: Sequence[DeviceReading]) -> Encoded:
        """``ReadingBatch`` messages on the agent's own telemetry topic.

        One per cycle when it fits; split when it would exceed the batch size or
        the contract's payload limit, so a large fleet stays within the contract.
        """
        rule = topic_rule(MessageKind.TELEMETRY)
        topic = self._topic(self._agent_id)
        valid: list[Reading] = []
        invalid = 0
        for reading in readings:
            try:
                valid.append(reading.to_reading())
            except ValidationError as exc:
                invalid += 1
                logger.warning("dropping invalid reading %r: %s", reading, exc)
        messages: list[OutgoingMessage] = []
        size = self._batch_max_readings
        for start in range(0, len(valid), size):
            for payload in self._fit(valid[start : start + size]):
                messages.append(OutgoingMessage(topic, payload, rule.qos, rule.retain))
        return Encoded(messages, invalid)

    def _fit(self, chunk: list[Reading]) -> list[bytes]:
        payload = ReadingBatch(
            readings=chunk, seq=self._sequences.peek(BATCH_STREAM)
        ).model_dump_json(exclude_none=True)
        encoded = payload.encode()
        if len(encoded) <= MAX_PAYLOAD_BYTES or len(chunk) == 1:
            self._sequences.advance(BATCH_STREAM)
            return [encoded]
        half = len(chunk) // 2
        return self._fit(chunk[:half]) + self._fit(chunk[half:])

    def _topic(self, device: str) -> str:
        topic = self._topics.get(device)
        if topic is None:
            topic = self._topics[device] = telemetry_topic(self._tenant, device)
        return topic

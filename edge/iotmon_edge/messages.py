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


_EVENT_ADAPTER: TypeAdapter[DeviceEvent] = TypeAdapter(DeviceEvent)


class EventEncoder:
    """Device events on ``.../<device>/event``, numbered per device (the contract's ``seq``)."""

    def __init__(self, tenant: str) -> None:
        self._tenant = tenant
        self._seq: dict[str, int] = {}

    def encode(self, device: str, fields: Mapping[str, Any]) -> OutgoingMessage | None:
        """The event ``fields`` (``type``, ``ts`` and the type's own; not ``seq``) as a
        message, or None (logged) when they break the contract."""
        seq = self._seq.get(device, 0)
        try:
            topic = event_topic(self._tenant, device)
            event = _EVENT_ADAPTER.validate_python({**fields, "seq": seq})
        except (ValidationError, ValueError) as exc:
            logger.warning("dropping invalid event of %s: %s", device, exc)
            return None
        self._seq[device] = seq + 1
        rule = topic_rule(MessageKind.EVENT)
        payload = event.model_dump_json(exclude_none=True).encode()
        return OutgoingMessage(topic, payload, rule.qos, rule.retain)


class TelemetryEncoder:
    """Encodes one agent's readings; keeps the per-device and per-batch sequence numbers."""

    def __init__(self, tenant: str, agent_id: str, batch_max_readings: int) -> None:
        self._tenant = tenant
        self._agent_id = agent_id
        self._batch_max_readings = batch_max_readings
        self._device_seq: dict[str, int] = {}
        self._batch_seq = 0
        self._topics: dict[str, str] = {}

    def singles(self, readings: Iterable[DeviceReading]) -> Encoded:
        """One message per reading on the reading's device telemetry topic."""
        rule = topic_rule(MessageKind.TELEMETRY)
        messages: list[OutgoingMessage] = []
        invalid = 0
        for reading in readings:
            seq = self._device_seq.get(reading.device, 0)
            try:
                topic = self._topic(reading.device)
                payload = reading.to_single(seq).model_dump_json(exclude_none=True)
            except (ValidationError, ValueError) as exc:
                invalid += 1
                logger.warning("dropping invalid reading %r: %s", reading, exc)
                continue
            self._device_seq[reading.device] = seq + 1
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
        payload = ReadingBatch(readings=chunk, seq=self._batch_seq).model_dump_json(
            exclude_none=True
        )
        encoded = payload.encode()
        if len(encoded) <= MAX_PAYLOAD_BYTES or len(chunk) == 1:
            self._batch_seq += 1
            return [encoded]
        half = len(chunk) // 2
        return self._fit(chunk[:half]) + self._fit(chunk[half:])

    def _topic(self, device: str) -> str:
        topic = self._topics.get(device)
        if topic is None:
            topic = self._topics[device] = telemetry_topic(self._tenant, device)
        return topic

"""Turn an MQTT (topic, payload) into validated readings or events, or say exactly why not.

This is the consumer side of the contract: ingest and every later consumer use
it, so the reasons a message is refused are the same everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from pydantic import ValidationError

from iotmon_contract.events import DeviceEvent, parse_event
from iotmon_contract.payloads import (
    MAX_PAYLOAD_BYTES,
    DeadLetter,
    DeadLetterReason,
    WireMessage,
    parse_telemetry_dict,
)
from iotmon_contract.topics import MessageKind, TopicError, TopicInfo, parse_topic

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_US = 1000
_NS_PER_S = 1_000_000_000
_EXCERPT_BYTES = 512


class ValidatedReading(NamedTuple):
    tenant: str
    device: str
    metric: str
    value: float
    unit: str | None
    ts_ns: int


class ValidatedEvent(NamedTuple):
    tenant: str
    device: str
    """The event's child device, or the topic's device."""
    type: str
    seq: int
    ts_ns: int
    event: DeviceEvent


class ContractViolation(Exception):
    """Why a message was refused: a dead-letter reason and a human-readable detail."""

    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail

    def dead_letter(self, service: str, topic: str, payload: bytes) -> DeadLetter:
        return DeadLetter(
            service=service,
            reason=self.reason,
            detail=self.detail[:2000],
            topic=topic[:1024],
            payload_excerpt=payload[:_EXCERPT_BYTES].decode("utf-8", errors="replace")[:1024],
            payload_bytes=len(payload),
            received_at=datetime.now(UTC),
        )


def to_ns(ts: datetime) -> int:
    """Exact nanoseconds since the epoch (float seconds would lose precision)."""
    # Integer arithmetic on the timedelta's parts: twice as fast as ``// timedelta(...)``,
    # and this runs once per reading.
    since = ts - _EPOCH
    return ((since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds) * _NS_PER_US


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "<root>"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


def expect_topic(topic: str, kind: MessageKind) -> TopicInfo:
    """The parts of a device topic of ``kind``, or a BAD_TOPIC violation saying why not."""
    try:
        info = parse_topic(topic)
    except TopicError as exc:
        raise ContractViolation(DeadLetterReason.BAD_TOPIC, str(exc)) from None
    if info.kind is not kind:
        raise ContractViolation(
            DeadLetterReason.BAD_TOPIC, f"topic {topic!r} is not a {kind.value} topic"
        )
    return info


KnownDevice = Callable[[str, str], bool]
"""``known_device(tenant, device)``: is the device registered?"""
OwnsDevice = Callable[[str, str, str], bool]
"""``owns_device(tenant, gateway, child)``: may the gateway speak for the child?"""


class _ConsumerRules:
    """What a consumer adds to the contract: registered devices, size and time limits."""

    def __init__(
        self,
        *,
        known_device: KnownDevice | None = None,
        owns_device: OwnsDevice | None = None,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        max_future_skew: timedelta = timedelta(minutes=5),
        max_age: timedelta = timedelta(days=30),
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._known_device = known_device
        self._owns_device = owns_device
        self._max_payload_bytes = max_payload_bytes
        self._future_ns = max_future_skew // timedelta(microseconds=1) * _NS_PER_US
        self._age_ns = max_age // timedelta(microseconds=1) * _NS_PER_US
        self._clock = clock

    def _check_transport(
        self, topic: str, kind: MessageKind, payload: bytes, retained: bool
    ) -> TopicInfo:
        """Topic, retain flag and size: what is known before the payload is parsed."""
        info = expect_topic(topic, kind)
        if retained:
            raise ContractViolation(
                DeadLetterReason.RETAINED,
                f"{kind.value} on {topic!r} was published retained; the contract forbids it "
                "(clear it by publishing an empty retained message)",
            )
        if len(payload) > self._max_payload_bytes:
            raise ContractViolation(
                DeadLetterReason.OVERSIZED,
                f"payload is {len(payload)} bytes, limit is {self._max_payload_bytes}",
            )
        return info

    def _check_device(self, tenant: str, topic_device: str, device: str, where: str) -> None:
        """The topic's device is registered; a child is registered and the gateway's."""
        known = self._known_device
        if known is not None and not known(tenant, device):
            raise ContractViolation(
                DeadLetterReason.UNKNOWN_DEVICE,
                f"{where} {device!r} is not registered for tenant {tenant!r}",
            )
        owns = self._owns_device
        if owns is not None and device != topic_device and not owns(tenant, topic_device, device):
            raise ContractViolation(
                DeadLetterReason.UNAUTHORIZED_DEVICE,
                f"{where} {device!r} is not a child of {topic_device!r} in tenant {tenant!r}",
            )

    def _outside_window(self, where: str, ts: datetime) -> ContractViolation:
        return ContractViolation(
            DeadLetterReason.BAD_TIMESTAMP,
            f"{where} {ts.isoformat()} is outside the accepted window "
            f"(now -{self._age_ns // _NS_PER_S}s .. +{self._future_ns // _NS_PER_S}s)",
        )


class TelemetryValidator(_ConsumerRules):
    """Validates telemetry against the contract and the consumer's own rules.

    ``known_device(tenant, device)`` decides what counts as an unknown device and
    ``owns_device(tenant, gateway, child)`` which children a gateway may speak for;
    ``clock`` returns Unix nanoseconds and is injectable for tests.
    """

    def validate(
        self, topic: str, payload: bytes, *, retained: bool = False
    ) -> list[ValidatedReading]:
        """The readings of one message; ``retained`` is the flag the message arrived with."""
        info = self._check_transport(topic, MessageKind.TELEMETRY, payload, retained)
        batch, single = self._parse(payload)
        now = self._clock()
        earliest, latest = now - self._age_ns, now + self._future_ns
        tenant, topic_device = info.tenant, info.device
        known = self._known_device
        if known is not None:
            self._check_device(tenant, topic_device, topic_device, "device")
        check_child = (
            self._check_device if known is not None or self._owns_device is not None else None
        )
        if single is not None:
            ts_ns = to_ns(single["ts"])
            if not earliest <= ts_ns <= latest:
                raise self._outside_window("ts", single["ts"])
            return [
                ValidatedReading(
                    tenant, topic_device, single["metric"], single["value"],
                    single.get("unit"), ts_ns,
                )
            ]  # fmt: skip
        assert batch is not None
        # The per-reading loop of a gateway batch: to_ns inlined, tuples built by
        # tuple.__new__ (a NamedTuple's own constructor is a Python function).
        readings: list[ValidatedReading] = []
        append = readings.append
        make = tuple.__new__
        epoch = _EPOCH
        # Children already checked in this message: a gateway batch names each a few
        # times, and a set lookup is cheaper than asking the hooks again.
        cleared: set[str] = set()
        for reading in batch:
            since = reading["ts"] - epoch
            ts_ns = ((since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds) * 1000
            device = reading.get("device") or topic_device
            if check_child is not None and device != topic_device and device not in cleared:
                check_child(tenant, topic_device, device, f"readings.{len(readings)}.device")
                cleared.add(device)
            if not earliest <= ts_ns <= latest:
                raise self._outside_window(f"readings.{len(readings)}.ts", reading["ts"])
            append(
                make(
                    ValidatedReading,
                    (
                        tenant,
                        device,
                        reading["metric"],
                        reading["value"],
                        reading.get("unit"),
                        ts_ns,
                    ),
                )
            )
        return readings

    @staticmethod
    def _parse(payload: bytes) -> WireMessage:
        try:
            return parse_telemetry_dict(payload)
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise ContractViolation(
                    DeadLetterReason.NOT_JSON, f"payload is not valid JSON: {_describe(exc)}"
                ) from None
            raise ContractViolation(DeadLetterReason.SCHEMA, _describe(exc)) from None
        except UnicodeDecodeError as exc:
            raise ContractViolation(
                DeadLetterReason.NOT_JSON, f"payload is not UTF-8: {exc}"
            ) from None


class EventValidator(_ConsumerRules):
    """Validates device events against the contract and the consumer's own rules.

    The same rules and reasons as ``TelemetryValidator``, plus ``unknown_event_type``
    for an event whose ``type`` the contract does not define.
    """

    def validate(self, topic: str, payload: bytes, *, retained: bool = False) -> ValidatedEvent:
        """The event of one message; ``retained`` is the flag the message arrived with."""
        info = self._check_transport(topic, MessageKind.EVENT, payload, retained)
        event = self._parse(payload)
        tenant, topic_device = info.tenant, info.device
        device = event.device or topic_device
        if self._known_device is not None:
            self._check_device(tenant, topic_device, topic_device, "device")
        if device != topic_device:
            self._check_device(tenant, topic_device, device, "device")
        ts_ns = to_ns(event.ts)
        now = self._clock()
        if not now - self._age_ns <= ts_ns <= now + self._future_ns:
            raise self._outside_window("ts", event.ts)
        return ValidatedEvent(tenant, device, event.type, event.seq, ts_ns, event)

    @staticmethod
    def _parse(payload: bytes) -> DeviceEvent:
        try:
            return parse_event(payload)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            if any(e["type"] == "json_invalid" for e in errors):
                raise ContractViolation(
                    DeadLetterReason.NOT_JSON, f"payload is not valid JSON: {_describe(exc)}"
                ) from None
            if errors[0]["type"] == "union_tag_invalid":
                context = errors[0]["ctx"]
                raise ContractViolation(
                    DeadLetterReason.UNKNOWN_EVENT_TYPE,
                    f"type: {context['tag'][:64]!r} is not one of {context['expected_tags']}",
                ) from None
            raise ContractViolation(DeadLetterReason.SCHEMA, _describe(exc)) from None
        except UnicodeDecodeError as exc:
            raise ContractViolation(
                DeadLetterReason.NOT_JSON, f"payload is not UTF-8: {exc}"
            ) from None


__all__ = [
    "ContractViolation",
    "EventValidator",
    "KnownDevice",
    "OwnsDevice",
    "TelemetryValidator",
    "ValidatedEvent",
    "ValidatedReading",
    "expect_topic",
    "to_ns",
]

"""Turn an MQTT (topic, payload) into validated readings or events, or say exactly why not.

This is the consumer side of the contract: ingest and every later consumer use
it, so the reasons a message is refused are the same everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import attrgetter, contains
from typing import NamedTuple

from pydantic import ValidationError

from iotmon_contract import fast_wire
from iotmon_contract.events import DeviceEvent, parse_event
from iotmon_contract.fast_wire import DistinctValues, NotFast, timestamps_ns
from iotmon_contract.payloads import (
    MAX_PAYLOAD_BYTES,
    DeadLetter,
    DeadLetterReason,
    Reading,
    WireMessage,
    parse_telemetry_dict,
)
from iotmon_contract.readings import ReadingColumns, ValidatedReading
from iotmon_contract.topics import MessageKind, TopicError, TopicInfo, parse_topic

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_US = 1000
_NS_PER_S = 1_000_000_000
_EXCERPT_BYTES = 512


class ValidatedEvent(NamedTuple):
    tenant: str
    device: str
    """The event's child device, or the topic's device."""
    type: str
    seq: int
    ts_ns: int
    event: DeviceEvent


@dataclass(frozen=True, slots=True)
class Refusal:
    """A message ``validate_many`` refused: its index in the call and why."""

    index: int
    violation: ContractViolation


@dataclass(slots=True)
class ValidatedMessages:
    """What ``validate_many`` made of its messages."""

    readings: ReadingColumns = field(default_factory=ReadingColumns)
    """The single readings' messages in order, then each gateway batch's in order."""
    refused: list[Refusal] = field(default_factory=list)
    """In message order."""
    one_by_one: int = 0
    """Messages the models decided one at a time (refused, or not for the fast path)."""


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


_SMALLEST_HALVED_GROUP = 8
"""A failing group of single readings this small is checked one message at a time."""
_READINGS_KEY = b'"readings"'
_TOPIC_CACHE_LIMIT = 65_536
_metric_of = attrgetter("metric")
_value_of = attrgetter("value")
_unit_of = attrgetter("unit")
_ts_of = attrgetter("ts")
_device_of = attrgetter("device")
_index_of = attrgetter("index")


class _TopicDevice(NamedTuple):
    tenant: str
    device: str


class TelemetryValidator(_ConsumerRules):
    """Validates telemetry against the contract and the consumer's own rules.

    ``known_device(tenant, device)`` decides what counts as an unknown device and
    ``owns_device(tenant, gateway, child)`` which children a gateway may speak for;
    ``clock`` returns Unix nanoseconds and is injectable for tests.

    ``validate`` takes one message; ``validate_many`` many at once, with the same answers
    several times faster (iotmon_contract.fast_wire).
    """

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
        super().__init__(
            known_device=known_device,
            owns_device=owns_device,
            max_payload_bytes=max_payload_bytes,
            max_future_skew=max_future_skew,
            max_age=max_age,
            clock=clock,
        )
        self._topics: dict[str, _TopicDevice] = {}
        # Single readings and batch readings share these field types (the structs and a
        # test hold them to it), so one cache of good values serves both.
        self._metrics = DistinctValues.of(Reading, "metric")
        self._units = DistinctValues.of(Reading, "unit")
        self._devices = DistinctValues.of(Reading, "device")

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

    # -- many messages at once -------------------------------------------------------

    def validate_many(self, topics: Sequence[str], payloads: Sequence[bytes]) -> ValidatedMessages:
        """Validate telemetry messages that arrived without the retain flag, together.

        Accepts and refuses exactly what ``validate`` does, message by message (the
        refusals carry the same violations). The fast path decodes with msgspec and checks
        in bulk; a message it does not take goes to ``validate``, and a group of single
        readings that fails a bulk check is halved until the culprits are found.
        """
        result = ValidatedMessages()
        count = len(payloads)
        if count == 0:
            return result
        now = self._clock()
        window = (now - self._age_ns, now + self._future_ns)
        places = list(map(self._topics.get, topics))
        oversized = max(map(len, payloads)) > self._max_payload_bytes
        if None in places or oversized:
            one_by_one = []
            for index in range(count):
                if places[index] is None:
                    places[index] = self._topic_device(topics[index])
                if places[index] is None or len(payloads[index]) > self._max_payload_bytes:
                    one_by_one.append(index)
        else:
            one_by_one = []
        if not one_by_one and not any(map(contains, payloads, repeat(_READINGS_KEY))):
            singles, batches = list(range(count)), list[int]()
        else:
            skip = set(one_by_one)
            singles, batches = [], []
            for index in range(count):
                if index not in skip:
                    (batches if _READINGS_KEY in payloads[index] else singles).append(index)
        known: dict[_TopicDevice, bool] = {}
        self._take_singles(singles, places, payloads, window, known, topics, result)
        for index in batches:
            place = places[index]
            assert place is not None
            try:
                result.readings.extend(self._fast_batch(place, payloads[index], window, known))
            except NotFast:
                self._one_at_a_time(index, topics[index], payloads[index], result)
        for index in one_by_one:
            self._one_at_a_time(index, topics[index], payloads[index], result)
        result.refused.sort(key=_index_of)
        return result

    def _topic_device(self, topic: str) -> _TopicDevice | None:
        """A telemetry topic's tenant and device (cached), or None when it is not one."""
        try:
            info = expect_topic(topic, MessageKind.TELEMETRY)
        except ContractViolation:
            return None
        if len(self._topics) >= _TOPIC_CACHE_LIMIT:
            self._topics.clear()
        place = self._topics[topic] = _TopicDevice(info.tenant, info.device)
        return place

    def _one_at_a_time(
        self, index: int, topic: str, payload: bytes, result: ValidatedMessages
    ) -> None:
        result.one_by_one += 1
        try:
            result.readings.extend(self.validate(topic, payload))
        except ContractViolation as violation:
            result.refused.append(Refusal(index, violation))

    def _known(self, place: _TopicDevice, known: dict[_TopicDevice, bool]) -> bool:
        """The topic's device passes the registry (asked once per call and device)."""
        answer = known.get(place)
        if answer is None:
            check = self._known_device
            answer = known[place] = check is None or check(place.tenant, place.device)
        return answer

    def _take_singles(
        self,
        group: list[int],
        places: list[_TopicDevice | None],
        payloads: Sequence[bytes],
        window: tuple[int, int],
        known: dict[_TopicDevice, bool],
        topics: Sequence[str],
        result: ValidatedMessages,
    ) -> None:
        if not group:
            return
        try:
            result.readings.extend(
                self._fast_singles(
                    list(map(places.__getitem__, group)),  # type: ignore[arg-type]
                    list(map(payloads.__getitem__, group)),
                    window,
                    known,
                )
            )
        except NotFast:
            if len(group) <= _SMALLEST_HALVED_GROUP:
                for index in group:
                    self._one_at_a_time(index, topics[index], payloads[index], result)
                return
            half = len(group) // 2
            for part in (group[:half], group[half:]):
                self._take_singles(part, places, payloads, window, known, topics, result)

    def _fast_singles(
        self,
        places: list[_TopicDevice],
        payloads: list[bytes],
        window: tuple[int, int],
        known: dict[_TopicDevice, bool],
    ) -> ReadingColumns:
        # A JSON escape could spell what the bulk checks look for differently: the models
        # read those payloads.
        if b"\\" in b"".join(payloads):
            raise NotFast
        try:
            decoded = list(map(fast_wire.decode_single, payloads))
        except fast_wire.DecodeErrors:
            raise NotFast from None
        metrics = list(map(_metric_of, decoded))
        units = list(map(_unit_of, decoded))
        if not self._metrics.accepts(metrics) or not self._units.accepts(units):
            raise NotFast
        stamps = timestamps_ns(list(map(_ts_of, decoded)))
        if min(stamps) < window[0] or max(stamps) > window[1]:
            raise NotFast
        for place in set(places):
            if not self._known(place, known):
                raise NotFast
        tenants, devices = zip(*places, strict=True)
        values = list(map(_value_of, decoded))
        return ReadingColumns(list(tenants), list(devices), metrics, values, units, stamps)

    def _fast_batch(
        self,
        place: _TopicDevice,
        payload: bytes,
        window: tuple[int, int],
        known: dict[_TopicDevice, bool],
    ) -> ReadingColumns:
        if b"\\" in payload:
            raise NotFast
        try:
            decoded = fast_wire.decode_batch(payload).readings
        except fast_wire.DecodeErrors:
            raise NotFast from None
        metrics = list(map(_metric_of, decoded))
        units = list(map(_unit_of, decoded))
        devices = list(map(_device_of, decoded))
        distinct_devices = set(devices)
        if (
            not self._metrics.accepts(metrics)
            or not self._units.accepts(units)
            or not self._devices.accepts(distinct_devices)
        ):
            raise NotFast
        stamps = timestamps_ns(list(map(_ts_of, decoded)))
        if min(stamps) < window[0] or max(stamps) > window[1]:
            raise NotFast
        tenant, gateway = place
        if not self._known(place, known):
            raise NotFast
        if None in distinct_devices:
            distinct_devices.discard(None)
            devices = [gateway if device is None else device for device in devices]
        distinct_devices.discard(gateway)
        known_device, owns = self._known_device, self._owns_device
        for child in distinct_devices:
            if (known_device is not None and not known_device(tenant, child)) or (
                owns is not None and not owns(tenant, gateway, child)
            ):
                raise NotFast
        values = list(map(_value_of, decoded))
        return ReadingColumns([tenant] * len(devices), devices, metrics, values, units, stamps)

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
    "ReadingColumns",
    "Refusal",
    "TelemetryValidator",
    "ValidatedEvent",
    "ValidatedMessages",
    "ValidatedReading",
    "expect_topic",
    "to_ns",
]

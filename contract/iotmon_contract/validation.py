"""Turn an MQTT (topic, payload) into validated readings, or say exactly why not.

This is the consumer side of the contract: ingest and every later consumer use
it, so the reasons a message is refused are the same everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from pydantic import ValidationError

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


class TelemetryValidator:
    """Validates telemetry against the contract and the consumer's own rules.

    ``known_device(tenant, device)`` decides what counts as an unknown device;
    ``may_speak_for(tenant, gateway, device)`` whether the device publishing on
    the topic (``gateway``) may send a batch reading naming another ``device``
    (its child): without it any child is accepted. ``clock`` returns Unix
    nanoseconds and is injectable for tests.
    """

    def __init__(
        self,
        *,
        known_device: Callable[[str, str], bool] | None = None,
        may_speak_for: Callable[[str, str, str], bool] | None = None,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        max_future_skew: timedelta = timedelta(minutes=5),
        max_age: timedelta = timedelta(days=30),
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._known_device = known_device
        self._may_speak_for = may_speak_for
        self._max_payload_bytes = max_payload_bytes
        self._future_ns = max_future_skew // timedelta(microseconds=1) * _NS_PER_US
        self._age_ns = max_age // timedelta(microseconds=1) * _NS_PER_US
        self._clock = clock

    def validate(self, topic: str, payload: bytes) -> list[ValidatedReading]:
        info = expect_topic(topic, MessageKind.TELEMETRY)
        if len(payload) > self._max_payload_bytes:
            raise ContractViolation(
                DeadLetterReason.OVERSIZED,
                f"payload is {len(payload)} bytes, limit is {self._max_payload_bytes}",
            )
        batch, single = self._parse(payload)
        now = self._clock()
        earliest, latest = now - self._age_ns, now + self._future_ns
        tenant, topic_device = info.tenant, info.device
        known = self._known_device
        if known is not None and not known(tenant, topic_device):
            raise ContractViolation(
                DeadLetterReason.UNKNOWN_DEVICE,
                f"device {topic_device!r} is not registered for tenant {tenant!r}",
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
        speaks_for = self._may_speak_for
        # Children already cleared in this message: a gateway batch names each a
        # few times, and a set lookup is cheaper than asking the hooks again.
        cleared: set[str] = set()
        for reading in batch:
            since = reading["ts"] - epoch
            ts_ns = ((since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds) * 1000
            device = reading.get("device") or topic_device
            if device != topic_device and device not in cleared:
                if known is not None and not known(tenant, device):
                    raise ContractViolation(
                        DeadLetterReason.UNKNOWN_DEVICE,
                        f"readings.{len(readings)}.device {device!r} is not registered "
                        f"for tenant {tenant!r}",
                    )
                if speaks_for is not None and not speaks_for(tenant, topic_device, device):
                    raise ContractViolation(
                        DeadLetterReason.UNAUTHORIZED_DEVICE,
                        f"readings.{len(readings)}.device {device!r} is not a child of "
                        f"gateway {topic_device!r} (tenant {tenant!r}): only a device's "
                        "registered gateway may publish its readings",
                    )
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

    def _outside_window(self, where: str, ts: datetime) -> ContractViolation:
        return ContractViolation(
            DeadLetterReason.BAD_TIMESTAMP,
            f"{where} {ts.isoformat()} is outside the accepted window "
            f"(now -{self._age_ns // _NS_PER_S}s .. +{self._future_ns // _NS_PER_S}s)",
        )

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


__all__ = ["ContractViolation", "TelemetryValidator", "ValidatedReading", "expect_topic", "to_ns"]

"""Pure ingest logic: turn a batch of raw MQTT messages into store records and dead letters.

No I/O here: the pipeline hands in messages, a validator and the time, and gets
back what to write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat

from iotmon_contract import (
    ContractViolation,
    DeadLetter,
    DeadLetterReason,
    EventValidator,
    MessageKind,
    ReadingColumns,
    StatusEvent,
    TelemetryValidator,
    ValidatedEvent,
    ValidatedReading,
    event_topic,
    parse_status,
    status_topic,
    telemetry_topic,
)
from iotmon_runtime.mqtt import InboundMessage

logger = logging.getLogger(__name__)

_TELEMETRY_SUFFIX = "/" + MessageKind.TELEMETRY.value
_STATUS_SUFFIX = "/" + MessageKind.STATUS.value
_EVENT_SUFFIX = "/" + MessageKind.EVENT.value
_RETAINED_DETAIL = "telemetry must not be published retained"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A refused message and why; the raw payload stays for the dead-letter topic."""

    letter: DeadLetter
    topic: str
    payload: bytes


@dataclass(slots=True)
class BatchOutcome:
    """What one batch of messages becomes."""

    messages: int = 0
    readings: ReadingColumns = field(default_factory=ReadingColumns)
    statuses: list[StatusEvent] = field(default_factory=list)
    events: list[ValidatedEvent] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    ignored: int = 0

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return [r.letter for r in self.rejected]


def decode_batch(
    messages: Sequence[InboundMessage],
    validator: TelemetryValidator,
    *,
    service: str,
    received_ns: int,
    events: EventValidator | None = None,
) -> BatchOutcome:
    """Validate every message on its own: a bad one becomes a dead letter, the rest go on.

    This is ingest's hot path. Plain telemetry, nearly every message, is validated all
    at once by ``validate_many`` (the same answers as one by one, several times faster);
    statuses, events and retained telemetry one at a time.
    """
    outcome = BatchOutcome(messages=len(messages))
    topics = [message.topic for message in messages]
    if not any(message.retained for message in messages) and all(
        map(str.endswith, topics, repeat(_TELEMETRY_SUFFIX))
    ):
        telemetry: Sequence[InboundMessage] = messages
    else:
        telemetry = []
        for message in messages:
            topic, payload, _token, retained = message
            if not retained and topic.endswith(_TELEMETRY_SUFFIX):
                telemetry.append(message)
            else:
                _decode_one(message, validator, events, outcome, service, received_ns)
        topics = [message.topic for message in telemetry]
    if not telemetry:
        return outcome
    try:
        validated = validator.validate_many(topics, [message.payload for message in telemetry])
    except Exception:
        # A validator bug must cost one message, not the batch: one by one, each caught.
        logger.exception("unexpected error validating %d messages at once", len(telemetry))
        for message in telemetry:
            _decode_one(message, validator, events, outcome, service, received_ns)
        return outcome
    outcome.readings.extend(validated.readings)
    for refusal in validated.refused:
        topic, payload = topics[refusal.index], telemetry[refusal.index].payload
        letter = refusal.violation.dead_letter(service, topic, payload)
        outcome.rejected.append(Rejected(letter, topic, payload))
    return outcome


def _decode_one(
    message: InboundMessage,
    validator: TelemetryValidator,
    events: EventValidator | None,
    outcome: BatchOutcome,
    service: str,
    received_ns: int,
) -> None:
    """One message's validation, its refusal caught and turned into a dead letter."""
    topic, payload, _token, retained = message
    try:
        if topic.endswith(_STATUS_SUFFIX):
            status = parse_status(topic, payload, received_ns)
            if status is None:
                outcome.ignored += 1
            else:
                outcome.statuses.append(status)
        elif events is not None and topic.endswith(_EVENT_SUFFIX):
            # The validator refuses a retained event itself (reason retained).
            outcome.events.append(events.validate(topic, payload, retained=retained))
        elif retained:
            # A retained reading would be handed to every new subscriber (MQTT 3.1.1
            # resends it on each subscribe): refuse it rather than store it again.
            raise ContractViolation(DeadLetterReason.RETAINED, _RETAINED_DETAIL)
        else:
            outcome.readings.extend(validator.validate(topic, payload))
    except ContractViolation as violation:
        outcome.rejected.append(
            Rejected(violation.dead_letter(service, topic, payload), topic, payload)
        )
    except Exception as exc:
        # A validator bug must cost one message, not the batch.
        logger.exception("unexpected error validating a message on %s", topic[:200])
        internal = ContractViolation(
            DeadLetterReason.SCHEMA, f"internal error while validating: {exc!r}"[:500]
        )
        outcome.rejected.append(
            Rejected(internal.dead_letter(service, topic, payload), topic, payload)
        )


class StoreGate:
    """When to try the store again after it failed: exponential back-off, reset on success.

    While the gate is closed, batches go straight to the spool instead of each
    waiting on a connection timeout.
    """

    def __init__(self, min_delay_s: float, max_delay_s: float, clock: Callable[[], float]) -> None:
        self._min = min_delay_s
        self._max = max(max_delay_s, min_delay_s)
        self._clock = clock
        self._delay = 0.0
        self._retry_at = 0.0

    @property
    def healthy(self) -> bool:
        return self._delay == 0.0

    def allow(self) -> bool:
        return self._delay == 0.0 or self._clock() >= self._retry_at

    def failed(self) -> None:
        self._delay = min(self._max, self._delay * 2) if self._delay else self._min
        self._retry_at = self._clock() + self._delay

    def succeeded(self) -> None:
        self._delay = 0.0
        self._retry_at = 0.0


def iso_ns(ts_ns: int) -> str:
    """RFC 3339 UTC with all nine digits: a dead letter names the exact point refused."""
    seconds, nanoseconds = divmod(ts_ns, 1_000_000_000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{nanoseconds:09d}Z"


def _store_rejected(
    service: str, topic: str, what: str, record: Mapping[str, object], reason: str
) -> Rejected:
    payload = json.dumps(record, separators=(",", ":")).encode()
    letter = DeadLetter(
        service=service,
        reason=DeadLetterReason.STORE_REJECTED,
        detail=f"the store refused {what}: {reason}"[:2000],
        topic=topic[:1024],
        payload_excerpt=payload[:1024].decode(errors="replace"),
        payload_bytes=len(payload),
        received_at=datetime.now(UTC),
    )
    return Rejected(letter, topic, payload)


def refused_reading(reading: ValidatedReading, reason: str, *, service: str) -> Rejected:
    """The dead letter of a reading the store refused: names it, carries it and the reason.

    The topic is the reading's device's telemetry topic (a gateway batch's reading
    came in on the gateway's); the payload is the reading itself, as stored.
    """
    tenant, device, metric, value, unit, ts_ns = reading
    ts = iso_ns(ts_ns)
    record = {
        "tenant": tenant,
        "device": device,
        "metric": metric,
        "value": value,
        "unit": unit,
        "ts": ts,
        "ts_ns": ts_ns,
    }
    what = f"{metric} of {tenant}/{device} at {ts}"
    return _store_rejected(service, telemetry_topic(tenant, device), what, record, reason)


def refused_status(status: StatusEvent, reason: str, *, service: str) -> Rejected:
    """The dead letter of a device status the store refused."""
    ts = iso_ns(status.ts_ns)
    record = {
        "tenant": status.tenant,
        "device": status.device,
        "state": status.state.value,
        "ts": ts,
        "ts_ns": status.ts_ns,
    }
    what = f"status {status.state.value} of {status.tenant}/{status.device} at {ts}"
    topic = status_topic(status.tenant, status.device)
    return _store_rejected(service, topic, what, record, reason)


def refused_event(event: ValidatedEvent, reason: str, *, service: str) -> Rejected:
    """The dead letter of a device event the store refused."""
    ts = iso_ns(event.ts_ns)
    record = {
        "tenant": event.tenant,
        "device": event.device,
        "event": event.event.model_dump(mode="json", exclude_none=True),
    }
    what = f"{event.type} event {event.seq} of {event.tenant}/{event.device} at {ts}"
    topic = event_topic(event.tenant, event.device)
    return _store_rejected(service, topic, what, record, reason)


def excerpt(payload: bytes, limit: int = 200) -> str:
    """The start of a payload, printable, for a log line."""
    text = payload[:limit].decode("utf-8", errors="replace")
    return text + ("…" if len(payload) > limit else "")


__all__ = [
    "BatchOutcome",
    "Rejected",
    "StoreGate",
    "decode_batch",
    "excerpt",
    "iso_ns",
    "refused_reading",
    "refused_status",
]

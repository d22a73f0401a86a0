"""The contract's limits fit together: a full batch fits the payload limit; the broker
passes the largest payload on to consumers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from iotmon_contract import (
    MAX_BATCH_READINGS,
    MAX_PAYLOAD_BYTES,
    ContractViolation,
    DeadLetterReason,
    Reading,
    ReadingBatch,
    TelemetryValidator,
    telemetry_topic,
)
from iotmon_contract.validation import to_ns

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MQTT_FIXED_HEADER = 5  # type byte and up to four bytes of remaining length
MQTT5_PUBLISH_OVERHEAD = 2 + 2 + 4  # topic length, packet id, properties length


def typical_reading(i: int) -> Reading:
    """What a gateway sends for one child sensor: a temperature with a unit, whole seconds."""
    return Reading(
        metric="temperature",
        value=round(15 + (i % 200) / 10, 1),
        ts=NOW,
        unit="degC",
        device=f"env-{i % 10_000:04d}",
    )


def most_compact_reading() -> Reading:
    return Reading(metric="t", value=0.0, ts=NOW)


def batch_payload(readings: list[Reading]) -> bytes:
    # As the edge agent encodes it (iotmon_edge.messages.TelemetryEncoder).
    return ReadingBatch(readings=readings, seq=2**40).model_dump_json(exclude_none=True).encode()


def test_a_full_batch_of_typical_readings_fits_and_validates() -> None:
    payload = batch_payload([typical_reading(i) for i in range(MAX_BATCH_READINGS)])
    assert len(payload) <= MAX_PAYLOAD_BYTES, f"{len(payload)} bytes"
    validator = TelemetryValidator(clock=lambda: to_ns(NOW))
    readings = validator.validate(telemetry_topic("acme", "gw-1"), payload)
    assert len(readings) == MAX_BATCH_READINGS
    assert {r.device for r in readings} == {f"env-{i:04d}" for i in range(MAX_BATCH_READINGS)}


def test_the_count_limit_is_reachable_within_the_size_limit() -> None:
    """The byte budget per reading of a full batch holds a typical reading, with room."""
    overhead = len(batch_payload([most_compact_reading()])) - len(
        most_compact_reading().model_dump_json(exclude_none=True)
    )
    budget = (MAX_PAYLOAD_BYTES - overhead) // MAX_BATCH_READINGS - 1  # a comma each
    typical = max(len(typical_reading(i).model_dump_json(exclude_none=True)) for i in range(500))
    compact = len(most_compact_reading().model_dump_json(exclude_none=True))
    assert compact < typical <= budget, (compact, typical, budget)


def test_a_batch_just_over_the_size_limit_is_refused_as_oversized() -> None:
    readings = [typical_reading(i) for i in range(MAX_BATCH_READINGS)]
    padded = [r.model_copy(update={"unit": "degC-padded-x"}) for r in readings]
    payload = batch_payload(padded)
    assert ReadingBatch.model_validate_json(payload)  # valid, only too large
    validator = TelemetryValidator(clock=lambda: to_ns(NOW))
    with pytest.raises(ContractViolation) as caught:
        validator.validate(telemetry_topic("acme", "gw-1"), payload)
    assert caught.value.reason is DeadLetterReason.OVERSIZED


def test_the_broker_passes_the_largest_payload_on_the_longest_topic() -> None:
    """Oversized messages must reach ingest (to be dead-lettered), not die in the broker."""
    config = (REPO / "broker" / "mosquitto.conf").read_text()
    match = re.search(r"^max_packet_size\s+(\d+)\s*$", config, re.MULTILINE)
    assert match is not None, "broker/mosquitto.conf sets no max_packet_size"
    longest_topic = len(telemetry_topic("t" * 64, "d" * 64))
    largest_packet = MQTT_FIXED_HEADER + MQTT5_PUBLISH_OVERHEAD + longest_topic + MAX_PAYLOAD_BYTES
    assert largest_packet < int(match.group(1))

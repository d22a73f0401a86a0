"""Readings to contract messages: topics, QoS/retain, sequence numbers, batch splitting."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from iotmon_contract import (
    MAX_PAYLOAD_BYTES,
    DeviceState,
    DeviceStatus,
    MessageKind,
    ReadingBatch,
    SingleReading,
    TelemetryValidator,
    parse_telemetry,
    status_topic,
    telemetry_topic,
    topic_rule,
)
from iotmon_devices import DeviceReading
from iotmon_edge.messages import TelemetryEncoder, status_message

NOW = datetime(2024, 5, 6, 12, tzinfo=UTC)
TELEMETRY = topic_rule(MessageKind.TELEMETRY)


def _readings(devices: int, metrics: int = 3) -> list[DeviceReading]:
    return [
        DeviceReading(f"env-{d:04d}", f"m{m}", d + m / 10, "u", NOW)
        for d in range(devices)
        for m in range(metrics)
    ]


def _batch(payload: bytes) -> ReadingBatch:
    batch = parse_telemetry(payload)
    assert isinstance(batch, ReadingBatch)
    return batch


def _validator() -> TelemetryValidator:
    return TelemetryValidator(clock=lambda: int(NOW.timestamp()) * 1_000_000_000)


def test_single_mode_puts_each_reading_on_its_device_topic_with_a_sequence() -> None:
    encoder = TelemetryEncoder("acme", "gw-1", 1000)
    first = encoder.singles(_readings(2, 2))
    second = encoder.singles(_readings(2, 2))
    assert first.invalid == 0
    assert [m.topic for m in first.messages] == [telemetry_topic("acme", "env-0000")] * 2 + [
        telemetry_topic("acme", "env-0001")
    ] * 2
    assert all((m.qos, m.retain) == (TELEMETRY.qos, TELEMETRY.retain) for m in first.messages)
    seqs = [parse_telemetry(m.payload).seq for m in first.messages + second.messages]
    assert seqs == [0, 1, 0, 1, 2, 3, 2, 3]
    for message in first.messages:
        (validated,) = _validator().validate(message.topic, message.payload)
        assert isinstance(parse_telemetry(message.payload), SingleReading)
        assert validated.tenant == "acme"


def test_batch_mode_uses_the_agent_topic_and_names_each_device() -> None:
    encoder = TelemetryEncoder("acme", "gw-1", 1000)
    encoded = encoder.batches(_readings(5))
    (message,) = encoded.messages
    assert message.topic == telemetry_topic("acme", "gw-1")
    batch = parse_telemetry(message.payload)
    assert isinstance(batch, ReadingBatch)
    assert {r.device for r in batch.readings} == {f"env-{d:04d}" for d in range(5)}
    assert len(_validator().validate(message.topic, message.payload)) == 15


def test_large_cycles_are_split_within_the_contract_limits() -> None:
    encoder = TelemetryEncoder("acme", "gw-1", 1000)
    readings = _readings(2000)  # 6000 readings: over the batch size and the byte limit
    encoded = encoder.batches(readings)
    assert len(encoded.messages) == math.ceil(6000 / 1000)
    total = 0
    seqs = []
    for message in encoded.messages:
        assert len(message.payload) <= MAX_PAYLOAD_BYTES
        batch = parse_telemetry(message.payload)
        assert isinstance(batch, ReadingBatch)
        total += len(batch.readings)
        seqs.append(batch.seq)
    assert total == 6000
    assert seqs == list(range(6))


def test_oversized_batches_are_halved_until_they_fit() -> None:
    encoder = TelemetryEncoder("acme", "gw-1", 5000)
    long_unit = "u" * 16
    readings = [
        DeviceReading(f"device-with-a-long-name-{i:08d}", "temperature", 1.0, long_unit, NOW)
        for i in range(5000)
    ]
    encoded = encoder.batches(readings)
    assert len(encoded.messages) > 1
    assert all(len(m.payload) <= MAX_PAYLOAD_BYTES for m in encoded.messages)
    assert sum(len(_batch(m.payload).readings) for m in encoded.messages) == 5000


def test_invalid_readings_are_dropped_and_counted_not_published() -> None:
    readings = [
        DeviceReading("env-0001", "temperature", 21.0, "degC", NOW),
        DeviceReading("env-0001", "temperature", math.nan, "degC", NOW),
        DeviceReading("Bad Device", "temperature", 21.0, "degC", NOW),
        DeviceReading("env-0001", "Bad-Metric", 1.0, None, NOW),
    ]
    single = TelemetryEncoder("acme", "gw-1", 10).singles(readings)
    batch = TelemetryEncoder("acme", "gw-1", 10).batches(readings)
    assert (len(single.messages), single.invalid) == (1, 3)
    assert batch.invalid == 3
    assert len(_batch(batch.messages[0].payload).readings) == 1


def test_status_messages_are_retained_and_the_will_has_no_timestamp() -> None:
    online = status_message("acme", "env-0001", DeviceState.ONLINE, NOW, "iotmon-edge/test")
    will = status_message("acme", "gw-1", DeviceState.OFFLINE, None, "iotmon-edge/test")
    rule = topic_rule(MessageKind.STATUS)
    assert online.topic == status_topic("acme", "env-0001")
    assert (online.qos, online.retain) == (rule.qos, rule.retain) == (1, True)
    assert DeviceStatus.model_validate_json(online.payload) == DeviceStatus(
        state=DeviceState.ONLINE, ts=NOW, agent="iotmon-edge/test"
    )
    assert DeviceStatus.model_validate_json(will.payload).ts is None

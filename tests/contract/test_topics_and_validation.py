"""Topic scheme and the consumer-side validator: every refusal names its reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotmon_contract import (
    MAX_PAYLOAD_BYTES,
    ContractViolation,
    DeadLetterReason,
    MessageKind,
    TelemetryValidator,
    TopicError,
    parse_topic,
    shared_subscription,
    status_topic,
    telemetry_filter,
    telemetry_topic,
)
from iotmon_contract.validation import to_ns

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
identifiers = st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,63}\Z")


@given(identifiers, identifiers)
def test_topics_round_trip(tenant: str, device: str) -> None:
    info = parse_topic(telemetry_topic(tenant, device))
    assert (info.tenant, info.device, info.kind) == (tenant, device, MessageKind.TELEMETRY)
    assert parse_topic(status_topic(tenant, device)).kind is MessageKind.STATUS


@pytest.mark.parametrize("bad", ["Dev", "a/b", "a+b", "#", "", "_sys", "x" * 65])
def test_identifiers_that_would_break_topics_are_refused(bad: str) -> None:
    with pytest.raises(TopicError, match="device"):
        telemetry_topic("acme", bad)


def test_filters_and_shared_subscription() -> None:
    assert telemetry_filter() == "iotmon/v1/+/+/telemetry"
    assert shared_subscription("ingest", telemetry_filter("acme")) == (
        "$share/ingest/iotmon/v1/acme/+/telemetry"
    )


def validator(**kwargs: object) -> TelemetryValidator:
    return TelemetryValidator(clock=lambda: to_ns(NOW), **kwargs)  # type: ignore[arg-type]


def single(ts: datetime = NOW, **extra: object) -> bytes:
    return json.dumps(
        {"metric": "temperature", "value": 21.5, "ts": ts.isoformat(), **extra}
    ).encode()


TOPIC = "iotmon/v1/acme/env-1/telemetry"


def test_valid_single_and_batch() -> None:
    [reading] = validator().validate(TOPIC, single(unit="degC"))
    assert reading == ("acme", "env-1", "temperature", 21.5, "degC", to_ns(NOW))
    batch = {
        "readings": [
            {"metric": "co2", "value": 400, "ts": NOW.isoformat()},
            {"metric": "co2", "value": 410, "ts": NOW.isoformat(), "device": "tag-7"},
        ]
    }
    readings = validator().validate(TOPIC, json.dumps(batch).encode())
    assert [(r.device, r.value) for r in readings] == [("env-1", 400.0), ("tag-7", 410.0)]


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "says"),
    [
        (TOPIC, b"not json", DeadLetterReason.NOT_JSON, "not valid JSON"),
        (TOPIC, b"\xff\xfe", DeadLetterReason.NOT_JSON, "JSON"),
        (TOPIC, b'{"metric": "temperature"}', DeadLetterReason.SCHEMA, "value"),
        (TOPIC, single(extra=1), DeadLetterReason.SCHEMA, "extra"),
        (
            TOPIC,
            b'{"metric":"t","value":1,"ts":"2026-11-25T12:00:00"}',
            DeadLetterReason.SCHEMA,
            "ts: Input should be an RFC 3339 timestamp with a UTC offset",
        ),
        (TOPIC, b'{"readings": []}', DeadLetterReason.SCHEMA, "readings"),
        (TOPIC, single(NOW + timedelta(hours=1)), DeadLetterReason.BAD_TIMESTAMP, "ts"),
        (TOPIC, single(NOW - timedelta(days=60)), DeadLetterReason.BAD_TIMESTAMP, "ts"),
        (TOPIC, b" " * (MAX_PAYLOAD_BYTES + 1), DeadLetterReason.OVERSIZED, "bytes"),
        ("iotmon/v1/acme/Env-1/telemetry", single(), DeadLetterReason.BAD_TOPIC, "device"),
        ("iotmon/v1/acme/env-1/status", single(), DeadLetterReason.BAD_TOPIC, "telemetry"),
        ("other/topic", single(), DeadLetterReason.BAD_TOPIC, "topic"),
    ],
)
def test_refusals_name_reason_and_place(
    topic: str, payload: bytes, reason: DeadLetterReason, says: str
) -> None:
    with pytest.raises(ContractViolation) as caught:
        validator().validate(topic, payload)
    assert caught.value.reason is reason
    assert says in caught.value.detail
    letter = caught.value.dead_letter("ingest", topic, payload)
    assert letter.reason is reason
    assert letter.payload_bytes == len(payload)
    assert len(letter.payload_excerpt) <= 1024


def test_non_finite_values_are_refused() -> None:
    payload = b'{"metric": "t", "value": NaN, "ts": "2026-11-25T12:00:00Z"}'
    with pytest.raises(ContractViolation) as caught:
        validator().validate(TOPIC, payload)
    assert caught.value.reason in (DeadLetterReason.SCHEMA, DeadLetterReason.NOT_JSON)


def test_unknown_devices_including_batch_children() -> None:
    known = validator(known_device=lambda tenant, device: device.startswith("env-"))
    with pytest.raises(ContractViolation) as caught:
        known.validate("iotmon/v1/acme/rogue/telemetry", single())
    assert caught.value.reason is DeadLetterReason.UNKNOWN_DEVICE
    batch = {"readings": [{"metric": "t", "value": 1, "ts": NOW.isoformat(), "device": "rogue"}]}
    with pytest.raises(ContractViolation, match=r"readings\.0\.device"):
        known.validate(TOPIC, json.dumps(batch).encode())


def test_batch_children_need_the_topic_device_as_their_gateway() -> None:
    asked: list[tuple[str, str, str]] = []

    def owns_device(tenant: str, gateway: str, device: str) -> bool:
        asked.append((tenant, gateway, device))
        return (gateway, device) == ("env-1", "tag-7")

    checked = validator(owns_device=owns_device)
    readings = [
        {"metric": "t", "value": 1, "ts": NOW.isoformat()},
        {"metric": "t", "value": 2, "ts": NOW.isoformat(), "device": "env-1"},
        {"metric": "t", "value": 3, "ts": NOW.isoformat(), "device": "tag-7"},
        {"metric": "h", "value": 4, "ts": NOW.isoformat(), "device": "tag-7"},
    ]
    accepted = checked.validate(TOPIC, json.dumps({"readings": readings}).encode())
    assert [r.device for r in accepted] == ["env-1", "env-1", "tag-7", "tag-7"]
    # Asked only about the device that is not the topic's, once per message.
    assert asked == [("acme", "env-1", "tag-7")]
    readings.append({"metric": "t", "value": 4, "ts": NOW.isoformat(), "device": "env-2"})
    with pytest.raises(ContractViolation) as caught:
        checked.validate(TOPIC, json.dumps({"readings": readings}).encode())
    assert caught.value.reason is DeadLetterReason.UNAUTHORIZED_DEVICE
    assert caught.value.detail == (
        "readings.4.device 'env-2' is not a child of 'env-1' in tenant 'acme'"
    )
    # A single reading is on its own topic: nothing to authorize.
    assert len(checked.validate("iotmon/v1/acme/env-9/telemetry", single())) == 1


def test_batch_timestamp_error_points_at_the_reading() -> None:
    batch = {
        "readings": [
            {"metric": "t", "value": 1, "ts": NOW.isoformat()},
            {"metric": "t", "value": 1, "ts": (NOW + timedelta(days=1)).isoformat()},
        ]
    }
    with pytest.raises(ContractViolation, match=r"readings\.1\.ts"):
        validator().validate(TOPIC, json.dumps(batch).encode())

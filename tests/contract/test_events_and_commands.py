"""Event registry, EventValidator (every refusal names its reason), the validators' new
checks (retained, gateway ownership) and the command reply helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotmon_contract import (
    EVENT_TYPES,
    MAX_PAYLOAD_BYTES,
    CommandRequest,
    CommandResponse,
    CommandStatus,
    ContractViolation,
    DeadLetter,
    DeadLetterReason,
    EventEnvelope,
    EventValidator,
    FaultEvent,
    FaultSeverity,
    TagReadEvent,
    TelemetryValidator,
    ValidatedEvent,
    error_response,
    ok_response,
    parse_event,
)
from iotmon_contract import events as events_module
from iotmon_contract.asyncapi import EVENT_SCHEMA_NAME, asyncapi_document, json_schemas
from iotmon_contract.commands import MAX_ERROR_CHARS
from iotmon_contract.validation import to_ns
from tests.contract.test_schema_agreement import VALIDATORS

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOPIC = "iotmon/v1/acme/bus-12/event"


def _subclasses(cls: type[EventEnvelope]) -> set[type[EventEnvelope]]:
    direct = set(cls.__subclasses__())
    return direct | {grand for sub in direct for grand in _subclasses(sub)}


def test_every_event_model_is_registered_in_the_union() -> None:
    """A model written but not added to DeviceEvent would be silently unreachable."""
    declared = {c for c in _subclasses(EventEnvelope) if c.__module__ == events_module.__name__}
    assert declared == set(EVENT_TYPES.values())
    for name, model in EVENT_TYPES.items():
        assert model.model_fields["type"].is_required()
        assert model.model_json_schema()["properties"]["type"]["const"] == name


def test_the_published_schemas_list_every_event_type() -> None:
    standalone = json_schemas()[EVENT_SCHEMA_NAME]
    assert set(standalone["discriminator"]["mapping"]) == set(EVENT_TYPES)
    union = asyncapi_document()["components"]["schemas"][EVENT_SCHEMA_NAME]
    refs = {option["$ref"].rsplit("/", 1)[1] for option in union["oneOf"]}
    assert refs == {model.__name__ for model in EVENT_TYPES.values()}


def event(**fields: object) -> bytes:
    payload = {
        "type": "fault",
        "ts": NOW.isoformat(),
        "seq": 7,
        "component": "modbus",
        "code": "timeout",
        "severity": "error",
        **fields,
    }
    return json.dumps({k: v for k, v in payload.items() if v is not None}).encode()


def validator(**kwargs: object) -> EventValidator:
    return EventValidator(clock=lambda: to_ns(NOW), **kwargs)  # type: ignore[arg-type]


def test_a_valid_event() -> None:
    validated = validator().validate(TOPIC, event(detail="unit 3 silent"))
    assert validated == ValidatedEvent(
        "acme", "bus-12", "fault", 7, to_ns(NOW), parse_event(event(detail="unit 3 silent"))
    )
    assert isinstance(validated.event, FaultEvent)
    assert validated.event.severity is FaultSeverity.ERROR
    assert validated.event.detail == "unit 3 silent"


def test_a_child_devices_event_is_attributed_to_the_child() -> None:
    payload = json.dumps(
        {"type": "tag_read", "ts": NOW.isoformat(), "seq": 1, "device": "reader-front",
         "tag": "E280116060000208", "rssi": -60}
    ).encode()  # fmt: skip
    validated = validator().validate(TOPIC, payload)
    assert (validated.device, validated.type) == ("reader-front", "tag_read")
    assert isinstance(validated.event, TagReadEvent)
    assert validated.event.rssi == -60.0


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "says"),
    [
        (TOPIC, b"not json", DeadLetterReason.NOT_JSON, "not valid JSON"),
        (TOPIC, b"\xff\xfe", DeadLetterReason.NOT_JSON, "JSON"),
        (TOPIC, b"[]", DeadLetterReason.SCHEMA, "object"),
        (TOPIC, event(type=None), DeadLetterReason.SCHEMA, "'type'"),
        (TOPIC, event(type="teleport"), DeadLetterReason.UNKNOWN_EVENT_TYPE, "'teleport'"),
        (TOPIC, event(type=5), DeadLetterReason.UNKNOWN_EVENT_TYPE, "'5'"),
        (TOPIC, event(seq=None), DeadLetterReason.SCHEMA, "fault.seq"),
        (TOPIC, event(extra=1), DeadLetterReason.SCHEMA, "fault.extra"),
        (TOPIC, event(detail="a\nb"), DeadLetterReason.SCHEMA, "fault.detail"),
        (TOPIC, event(ts="2026-11-25T12:00:00"), DeadLetterReason.SCHEMA, "RFC 3339"),
        (
            TOPIC,
            event(ts=(NOW + timedelta(hours=1)).isoformat()),
            DeadLetterReason.BAD_TIMESTAMP,
            "ts",
        ),
        (
            TOPIC,
            event(ts=(NOW - timedelta(days=60)).isoformat()),
            DeadLetterReason.BAD_TIMESTAMP,
            "outside the accepted window",
        ),
        (TOPIC, b" " * (MAX_PAYLOAD_BYTES + 1), DeadLetterReason.OVERSIZED, "bytes"),
        ("iotmon/v1/acme/bus-12/telemetry", event(), DeadLetterReason.BAD_TOPIC, "event topic"),
        ("iotmon/v1/acme/Bus-12/event", event(), DeadLetterReason.BAD_TOPIC, "device"),
        ("iotmon/v1/acme/bus-12/event/x", event(), DeadLetterReason.BAD_TOPIC, "segment"),
    ],
)
def test_refusals_name_reason_and_place(
    topic: str, payload: bytes, reason: DeadLetterReason, says: str
) -> None:
    with pytest.raises(ContractViolation) as caught:
        validator().validate(topic, payload)
    assert caught.value.reason is reason
    assert says in caught.value.detail
    letter = caught.value.dead_letter("events", topic, payload)
    assert DeadLetter.model_validate_json(letter.model_dump_json()) == letter


def test_retained_events_and_telemetry_are_refused() -> None:
    with pytest.raises(ContractViolation) as caught:
        validator().validate(TOPIC, event(), retained=True)
    assert caught.value.reason is DeadLetterReason.RETAINED
    assert "retained" in caught.value.detail
    telemetry = b'{"metric":"t","value":1,"ts":"2026-11-25T12:00:00Z"}'
    topic = "iotmon/v1/acme/env-1/telemetry"
    plain = TelemetryValidator(clock=lambda: to_ns(NOW))
    assert len(plain.validate(topic, telemetry)) == 1
    with pytest.raises(ContractViolation) as caught:
        plain.validate(topic, telemetry, retained=True)
    assert caught.value.reason is DeadLetterReason.RETAINED


def _registry() -> dict[str, object]:
    children = {"bus-12": {"reader-front", "reader-rear"}, "bus-13": {"reader-13"}}
    known = {"bus-12", "bus-13", "reader-front", "reader-rear", "reader-13"}
    return {
        "known_device": lambda tenant, device: tenant == "acme" and device in known,
        "owns_device": lambda tenant, gateway, child: child in children.get(gateway, set()),
    }


@pytest.mark.parametrize(
    ("topic", "child", "reason"),
    [
        (TOPIC, None, None),
        (TOPIC, "reader-front", None),
        (TOPIC, "reader-13", DeadLetterReason.UNAUTHORIZED_DEVICE),  # bus-13's reader
        (TOPIC, "ghost", DeadLetterReason.UNKNOWN_DEVICE),
        ("iotmon/v1/acme/ghost/event", None, DeadLetterReason.UNKNOWN_DEVICE),
        ("iotmon/v1/other/bus-12/event", None, DeadLetterReason.UNKNOWN_DEVICE),
    ],
)
def test_event_devices_must_be_known_and_owned(
    topic: str, child: str | None, reason: DeadLetterReason | None
) -> None:
    events = validator(**_registry())
    if reason is None:
        assert events.validate(topic, event(device=child)).device == (child or "bus-12")
        return
    with pytest.raises(ContractViolation) as caught:
        events.validate(topic, event(device=child))
    assert caught.value.reason is reason


def test_batch_children_must_be_owned_by_the_gateway() -> None:
    telemetry = TelemetryValidator(clock=lambda: to_ns(NOW), **_registry())  # type: ignore[arg-type]
    reading = {"metric": "t", "value": 1, "ts": NOW.isoformat()}
    own = {"readings": [reading, {**reading, "device": "reader-rear"}]}
    readings = telemetry.validate("iotmon/v1/acme/bus-12/telemetry", json.dumps(own).encode())
    assert [r.device for r in readings] == ["bus-12", "reader-rear"]
    foreign = {"readings": [reading, {**reading, "device": "reader-13"}]}
    with pytest.raises(ContractViolation, match=r"readings\.1\.device 'reader-13'") as caught:
        telemetry.validate("iotmon/v1/acme/bus-12/telemetry", json.dumps(foreign).encode())
    assert caught.value.reason is DeadLetterReason.UNAUTHORIZED_DEVICE


def test_ownership_alone_is_checked_without_a_registry_of_known_devices() -> None:
    owns_only = TelemetryValidator(
        clock=lambda: to_ns(NOW), owns_device=lambda tenant, gateway, child: False
    )
    single = b'{"metric":"t","value":1,"ts":"2026-11-25T12:00:00Z"}'
    assert len(owns_only.validate("iotmon/v1/acme/env-1/telemetry", single)) == 1
    batch = {"readings": [{"metric": "t", "value": 1, "ts": NOW.isoformat(), "device": "x"}]}
    with pytest.raises(ContractViolation) as caught:
        owns_only.validate("iotmon/v1/acme/gw-1/telemetry", json.dumps(batch).encode())
    assert caught.value.reason is DeadLetterReason.UNAUTHORIZED_DEVICE


# --- command replies ----------------------------------------------------------------


def _published(response: CommandResponse) -> dict[str, object]:
    """What goes on the wire, checked against the published schema."""
    wire: dict[str, object] = json.loads(response.model_dump_json(exclude_none=True))
    assert not list(VALIDATORS["CommandResponse"].iter_errors(wire))
    assert CommandResponse.model_validate_json(json.dumps(wire)) == response
    return wire


def test_ok_response_echoes_the_transaction() -> None:
    request = CommandRequest.model_validate_json(
        '{"transaction": "7f3c2a10", "data": {"duration_s": 10}}'
    )
    data = {"reads": 12}
    response = ok_response(request, data)
    data["reads"] = 13  # the response keeps its own copy
    assert _published(response) == {
        "status": "ok",
        "data": {"reads": 12},
        "transaction": "7f3c2a10",
    }
    assert _published(ok_response(request)) == {
        "status": "ok",
        "data": {},
        "transaction": "7f3c2a10",
    }


def test_error_response_with_and_without_a_request() -> None:
    request = CommandRequest(transaction="t-1")
    assert request.data == {}
    assert _published(error_response(request, "reader busy")) == {
        "status": "error",
        "data": {},
        "error": "reader busy",
        "transaction": "t-1",
    }
    unreadable = error_response(None, "request is not valid JSON")
    assert unreadable.transaction is None
    assert _published(unreadable)["status"] == CommandStatus.ERROR.value


@given(st.text(st.one_of(st.characters(), st.sampled_from(["\udc80", "\n", "\u202e"]))))
def test_any_failure_message_gives_a_valid_error_response(message: str) -> None:
    response = error_response(CommandRequest(transaction="t-1"), message)
    wire = _published(response)
    assert wire["status"] == "error"
    assert isinstance(wire["error"], str)
    assert 1 <= len(wire["error"]) <= MAX_ERROR_CHARS


def test_a_long_traceback_is_cut_to_fit() -> None:
    message = "Traceback (most recent call last):\n" + "  File 'x.py', line 1\n" * 200
    error = error_response(None, message).error
    assert error is not None
    assert len(error) == MAX_ERROR_CHARS
    assert "\n" not in error
    assert error.startswith("Traceback (most recent call last):   File 'x.py', line 1   File")

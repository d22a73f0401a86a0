"""EventEncoder: events on each device's topic with the contract's per-device seq."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from iotmon_contract import ActionEvent, EventValidator, event_topic, parse_event
from iotmon_edge.messages import EventEncoder

TS = datetime(2026, 3, 1, 10, tzinfo=UTC)


def _action(name: str) -> dict[str, Any]:
    return {"type": "action", "ts": TS, "action": name}


def test_each_device_numbers_its_events_from_zero() -> None:
    encoder = EventEncoder("acme")
    messages = [
        encoder.encode(device, _action(name))
        for device, name in [("b-1", "single"), ("b-2", "on"), ("b-1", "double")]
    ]
    validator = EventValidator(clock=lambda: int(TS.timestamp() * 1e9))
    seen = []
    for message in messages:
        assert message is not None
        assert (message.qos, message.retain) == (1, False)
        event = validator.validate(message.topic, message.payload)
        action = parse_event(message.payload)
        assert isinstance(action, ActionEvent)
        seen.append((message.topic, event.seq, action.action))
    assert seen == [
        (event_topic("acme", "b-1"), 0, "single"),
        (event_topic("acme", "b-2"), 0, "on"),
        (event_topic("acme", "b-1"), 1, "double"),
    ]


def test_an_invalid_event_is_dropped_and_does_not_take_a_number() -> None:
    encoder = EventEncoder("acme")
    assert encoder.encode("b-1", _action("x" * 65)) is None
    assert encoder.encode("Not A Device", _action("single")) is None
    message = encoder.encode("b-1", _action("single"))
    assert message is not None
    assert parse_event(message.payload).seq == 0

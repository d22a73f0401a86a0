"""Events, commands, alerts and notices: the models accept exactly what the schemas accept.

The same method as test_schema_agreement.py (whose helpers these are): payload text
built field by field, mostly valid with one thing wrong at a time, judged by the model
and by the published schema under ECMA-262 pattern rules and an RFC 3339 format check.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from iotmon_contract import EVENT_TYPES, parse_event
from iotmon_contract.asyncapi import EVENT_SCHEMA_NAME
from tests.contract.test_schema_agreement import (
    Raw,
    assert_agree,
    device_ids,
    encode,
    free_text,
    model_errors,
    mostly,
    objects,
    other_json,
    sequences,
    timestamps,
)

# --- field strategies ---------------------------------------------------------------


def numbers(low: float, high: float) -> st.SearchStrategy[Any]:
    """JSON numbers for a bounded float field: in range (and on its ends) or just outside."""
    return mostly(
        st.one_of(
            st.floats(min_value=low, max_value=high, allow_nan=False),
            st.integers(min_value=int(low), max_value=int(high)),
            st.sampled_from([low, high, Raw(f"{high:g}".replace("e+", "E")), Raw("0.0")]),
        ),
        st.one_of(
            st.sampled_from([low - 1e-9, high + 1e-9, low - 1, high + 1, -1e308, 1e308]),
            st.sampled_from([Raw("1e400"), Raw("-1e400"), "1", True, False, None, [1.0]]),
        ),
    )


def integers(low: int, high: int) -> st.SearchStrategy[Any]:
    """JSON numbers for a bounded integer field; 3.0 is an integer to JSON Schema."""
    return mostly(
        st.one_of(
            st.integers(min_value=low, max_value=high),
            st.sampled_from([low, high, float(low), Raw(f"{low}.0"), Raw(f"{high}E0")]),
        ),
        st.one_of(
            st.sampled_from([low - 1, high + 1, 1.5, float(high) + 1, Raw("1e400")]),
            st.sampled_from([str(low), True, False, None, [low]]),
        ),
    )


def patterned(regex: str, bad: list[Any]) -> st.SearchStrategy[Any]:
    return mostly(st.from_regex(regex), st.one_of(st.sampled_from(bad), other_json))


def choices(good: list[str], bad: list[Any]) -> st.SearchStrategy[Any]:
    return mostly(st.sampled_from(good), st.sampled_from(bad))


names = device_ids  # the contract's lowercase ids
optional_names = st.one_of(names, st.none())
opaque_ids = patterned(
    r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\Z",
    ["", "-lead", "a b", "a/b", "a+b", "x" * 129, "é", "id\n", "ä1"],
)
tags = patterned(r"\A[A-Za-z0-9:_.-]{1,64}\Z", ["", "a b", "tag/1", "x" * 65, "E280\n", "ünï", "#"])
labels = patterned(r"\A[a-z][a-z0-9_]{0,63}\Z", ["", "Person", "1st", "traffic light", "a-b"])
booleans = mostly(st.booleans(), st.sampled_from([0, 1, "true", None, []]))
rssi = numbers(-150, 30)
fraction = numbers(0, 1)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
json_objects = mostly(
    st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    st.sampled_from([None, [], [{"a": 1}], "data", 1, True]),
)
media_urls = mostly(
    st.from_regex(r"\Ahttps?://[!-~]{1,200}\Z"),
    st.sampled_from(["", "ftp://x/y", "http://a b", "http://", "https://x/\u00e9", "h" * 3000, 5]),
)
optional_urls = st.one_of(media_urls, st.none())
media = {"snapshot_url": optional_urls, "clip_url": optional_urls}
counts = integers(0, 2**63 - 1)
boxes = mostly(
    st.lists(fraction, min_size=4, max_size=4),
    st.one_of(st.lists(fraction, min_size=0, max_size=6), other_json),
)


def event(kind: str, required: dict[str, Any], optional: dict[str, Any]) -> Any:
    """An event of ``kind`` (its type sometimes wrong) with the envelope's fields."""
    type_values = choices([kind], [*EVENT_TYPES, "Fault", "unknown", "", 5, None])
    envelope = {"type": type_values, "ts": timestamps, "seq": sequences}
    return objects({**envelope, **required}, {"device": st.one_of(names, st.none()), **optional})


EVENTS: dict[str, Any] = {
    "fault": event(
        "fault",
        {
            "component": names,
            "code": opaque_ids,
            "severity": choices(["warning", "error", "critical"], ["info", "ERROR", "", 1]),
        },
        {"detail": st.one_of(free_text(0, 500), st.none()), "cleared": booleans},
    ),
    "tag_read": event(
        "tag_read",
        {"tag": tags, "rssi": rssi},
        {"direction": st.one_of(choices(["in", "out"], ["IN", "both", ""]), st.none())},
    ),
    "sweep_read": event("sweep_read", {"sweep_id": opaque_ids, "tag": tags, "rssi": rssi}, {}),
    "sweep_complete": event(
        "sweep_complete", {"sweep_id": opaque_ids, "reads": integers(0, 1_000_000)}, {}
    ),
    "ignition": event("ignition", {"on": booleans}, {}),
    "position": event(
        "position",
        {"lat": numbers(-90, 90), "lon": numbers(-180, 180)},
        {
            "speed_kmh": st.one_of(numbers(0, 2000), st.none()),
            "heading_deg": st.one_of(numbers(0, 360), st.none()),
            "satellites": st.one_of(integers(0, 255), st.none()),
            "hdop": st.one_of(numbers(0, 100), st.none()),
        },
    ),
    "walkthrough_check": event("walkthrough_check", {}, {}),
    "run_start": event("run_start", {}, {"run_id": st.one_of(opaque_ids, st.none())}),
    "run_end": event("run_end", {}, {"run_id": st.one_of(opaque_ids, st.none())}),
    "action": event("action", {"action": free_text(1, 64)}, {}),
    "detection": event(
        "detection",
        {"label": labels, "confidence": fraction, "box": boxes},
        {
            "track_id": st.one_of(integers(0, 2**63 - 1), st.none()),
            "zone": optional_names,
            "snapshot_url": optional_urls,
        },
    ),
    "occupancy": event(
        "occupancy",
        {"people": integers(0, 10_000)},
        {
            "zone": optional_names,
            "vehicle": optional_names,
            "confidence": st.one_of(fraction, st.none()),
            "snapshot_url": optional_urls,
        },
    ),
    "intrusion": event(
        "intrusion",
        {"zone": names, "label": labels, "confidence": fraction, "box": boxes},
        {"track_id": st.one_of(counts, st.none()), **media},
    ),
    "line_cross": event(
        "line_cross",
        {
            "line": names,
            "direction": choices(["in", "out"], ["IN", "both", "", None]),
            "label": labels,
            "confidence": fraction,
            "box": boxes,
            "count_in": counts,
            "count_out": counts,
        },
        {"track_id": st.one_of(counts, st.none()), **media},
    ),
    "loitering": event(
        "loitering",
        {
            "zone": names,
            "dwell_s": numbers(0, 10_000_000),
            "label": labels,
            "confidence": fraction,
            "box": boxes,
        },
        {"track_id": st.one_of(counts, st.none()), **media},
    ),
    "crowding": event(
        "crowding",
        {"label": labels, "count": integers(0, 10_000), "limit": integers(0, 10_000)},
        {"zone": optional_names, **media},
    ),
}

subjects = mostly(
    objects({}, {"device": optional_names, "site": optional_names, "bus": optional_names,
                 "child": optional_names}),
    other_json,
)  # fmt: skip
summaries = free_text(1, 500)

command_requests = mostly(objects({"transaction": opaque_ids}, {"data": json_objects}), other_json)
command_responses = mostly(
    objects(
        {"status": choices(["ok", "error"], ["OK", "failed", "", None])},
        {
            "data": json_objects,
            "error": st.one_of(free_text(1, 1000), st.none()),
            "transaction": st.one_of(opaque_ids, st.none()),
        },
    ),
    other_json,
)
alerts = mostly(
    objects(
        {
            "fingerprint": opaque_ids,
            "rule": names,
            "state": choices(
                ["firing", "escalated", "acknowledged", "resolved"], ["open", "FIRING", ""]
            ),
            "severity": choices(["info", "warning", "critical"], ["error", "high", ""]),
            "summary": summaries,
            "starts_at": timestamps,
            "ts": timestamps,
        },
        {"subject": subjects, "details": json_objects},
    ),
    other_json,
)
notices = mostly(
    objects(
        {"kind": names, "ts": timestamps, "summary": summaries},
        {"subject": subjects, "data": json_objects},
    ),
    other_json,
)

# --- the properties ---------------------------------------------------------------

AGREEMENT = settings(max_examples=200, deadline=None)


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_each_event_type_model_and_schema_agree(kind: str) -> None:
    @AGREEMENT
    @given(EVENTS[kind])
    def check(payload: object) -> None:
        assert_agree(EVENT_SCHEMA_NAME, encode(payload))

    check()


@AGREEMENT
@given(st.one_of(*EVENTS.values(), other_json))
def test_device_event_union_and_schema_agree(payload: object) -> None:
    assert_agree(EVENT_SCHEMA_NAME, encode(payload))


@AGREEMENT
@given(command_requests)
def test_command_request_model_and_schema_agree(payload: object) -> None:
    assert_agree("CommandRequest", encode(payload))


@AGREEMENT
@given(command_responses)
def test_command_response_model_and_schema_agree(payload: object) -> None:
    assert_agree("CommandResponse", encode(payload))


@AGREEMENT
@given(alerts)
def test_alert_message_model_and_schema_agree(payload: object) -> None:
    assert_agree("AlertMessage", encode(payload))


@AGREEMENT
@given(notices)
def test_notice_model_and_schema_agree(payload: object) -> None:
    assert_agree("Notice", encode(payload))


def test_every_registered_event_type_is_generated() -> None:
    assert set(EVENTS) == set(EVENT_TYPES)


@pytest.mark.parametrize(
    ("name", "strategy"),
    [
        *((f"event:{kind}", strategy) for kind, strategy in EVENTS.items()),
        ("CommandRequest", command_requests),
        ("CommandResponse", command_responses),
        ("AlertMessage", alerts),
        ("Notice", notices),
    ],
)
def test_the_generators_reach_both_verdicts(name: str, strategy: Any) -> None:
    """Guard against a strategy that only ever yields one answer (a vacuous test)."""
    schema = EVENT_SCHEMA_NAME if name.startswith("event:") else name
    verdicts: set[bool] = set()

    @settings(max_examples=200, database=None)
    @given(strategy)
    def collect(payload: object) -> None:
        verdicts.add(model_errors(schema, encode(payload)) is None)

    collect()
    assert verdicts == {True, False}


# --- cases spelled out -------------------------------------------------------------

FAULT = {
    "type": "fault",
    "ts": "2026-11-25T07:42:10Z",
    "seq": 1,
    "component": "modbus",
    "code": "timeout",
    "severity": "error",
}


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, True),
        ({"seq": 3.0}, True),
        ({"device": "env-1"}, True),
        ({"detail": "unit 3: no answer"}, True),
        ({"detail": "x" * 500}, True),
        ({"detail": "x" * 501}, False),
        ({"detail": "line one\nline two"}, False),
        ({"detail": "\u202eevil"}, False),
        ({"seq": None}, False),  # required on events, unlike telemetry
        ({"type": None}, False),
        ({"type": "Fault"}, False),
        ({"cleared": 1}, False),
        ({"severity": "info"}, False),
        ({"code": "a b"}, False),
    ],
)
def test_fault_cases(change: dict[str, object], accepted: bool) -> None:
    payload = {**FAULT, **change}
    text = encode(payload)
    assert (model_errors(EVENT_SCHEMA_NAME, text) is None) is accepted
    assert_agree(EVENT_SCHEMA_NAME, text)


def test_missing_type_or_seq_is_refused() -> None:
    for key in ("type", "seq", "ts"):
        payload = {k: v for k, v in FAULT.items() if k != key}
        with pytest.raises(ValidationError):
            parse_event(json.dumps(payload))
        assert_agree(EVENT_SCHEMA_NAME, json.dumps(payload))


@pytest.mark.parametrize(
    ("payload", "accepted"),
    [
        ({"status": "ok"}, True),
        ({"status": "ok", "error": None, "transaction": None}, True),
        ({"status": "ok", "error": "boom"}, False),
        ({"status": "error", "error": "boom"}, True),
        ({"status": "error"}, False),
        ({"status": "error", "error": None}, False),
        ({"status": "error", "error": ""}, False),
        ({"status": "error", "error": "a\nb"}, False),
    ],
)
def test_error_is_set_exactly_when_status_is_error(payload: object, accepted: bool) -> None:
    text = encode(payload)
    assert (model_errors("CommandResponse", text) is None) is accepted
    assert_agree("CommandResponse", text)

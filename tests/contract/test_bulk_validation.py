"""``validate_many`` answers exactly as ``validate`` does, message by message, and takes the
fast path (msgspec structs, bulk checks) for the payloads producers actually send.

The payloads are the schema-agreement strategies' (mostly valid, often one thing wrong:
bad timestamps in ISO 8601 forms RFC 3339 is not, numbers as strings, unknown keys,
unprintable units...), written both with JSON escapes and without, on topics of known,
unknown and child devices, so every bulk check meets what it must refuse.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from iotmon_contract import Reading, SingleReading, TelemetryValidator, ValidatedReading
from iotmon_contract.fast_wire import model_struct
from iotmon_contract.validation import ValidatedMessages
from tests.contract.test_schema_agreement import (
    Raw,
    batches,
    device_ids,
    mostly,
    objects,
    other_json,
    reading_fields,
    rfc3339_strings,
    sequences,
    single_readings,
    unit_text,
    units,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
GATEWAYS = {"gw-1": {"c-1", "c-2"}, "gw-2": {"c-3"}}
KNOWN = {"dev-1", "dev-2", "gw-1", "gw-2", "c-1", "c-2", "c-3", "orphan"}
TOPICS = [
    "iotmon/v1/acme/dev-1/telemetry",
    "iotmon/v1/acme/dev-2/telemetry",
    "iotmon/v1/acme/gw-1/telemetry",
    "iotmon/v1/acme/gw-2/telemetry",
    "iotmon/v1/acme/stranger/telemetry",  # not registered
    "iotmon/v1/acme/dev-1/status",  # not a telemetry topic
    "iotmon/v1/ACME/dev-1/telemetry",  # not an identifier
    "iotmon/v2/acme/dev-1/telemetry",
]


def validator(
    *, window: timedelta = timedelta(days=4_000_000), registry: bool = True
) -> TelemetryValidator:
    """Registry rules as ingest has them (unless ``registry`` is false: any device); a
    window wide enough for any generated year unless a narrower one is asked for."""
    return TelemetryValidator(
        known_device=(lambda tenant, device: device in KNOWN) if registry else None,
        owns_device=(
            (lambda tenant, gateway, child: child in GATEWAYS.get(gateway, set()))
            if registry
            else None
        ),
        max_future_skew=window,
        max_age=window,
        clock=lambda: int(NOW.timestamp()) * 1_000_000_000,
    )


def encode(value: object, *, escapes: bool) -> bytes:
    """JSON text; without ``escapes`` non-ASCII characters are written as themselves, as
    most producers write them (only control characters stay escaped)."""
    if isinstance(value, Raw):
        return value.token.encode()
    if isinstance(value, dict):
        items = (
            encode(k, escapes=escapes) + b":" + encode(v, escapes=escapes) for k, v in value.items()
        )
        return b"{" + b",".join(items) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(encode(v, escapes=escapes) for v in value) + b"]"
    return json.dumps(value, allow_nan=False, ensure_ascii=escapes).encode("utf-8", "surrogatepass")


def one_by_one(
    check: TelemetryValidator, topics: list[str], payloads: list[bytes]
) -> tuple[Counter[ValidatedReading], list[tuple[int, str, str]]]:
    readings: Counter[ValidatedReading] = Counter()
    refused = []
    for index, (topic, payload) in enumerate(zip(topics, payloads, strict=True)):
        try:
            readings.update(check.validate(topic, payload))
        except Exception as exc:  # noqa: BLE001 - ContractViolation, compared below
            refused.append((index, exc.reason.value, exc.detail))  # type: ignore[attr-defined]
    return readings, refused


def at_once(
    result: ValidatedMessages,
) -> tuple[Counter[ValidatedReading], list[tuple[int, str, str]]]:
    refused = [(r.index, r.violation.reason.value, r.violation.detail) for r in result.refused]
    return Counter(result.readings), sorted(refused)


def assert_same_answers(
    topics: list[str], payloads: list[bytes], *, registry: bool = True
) -> ValidatedMessages:
    result = validator(registry=registry).validate_many(topics, payloads)
    assert at_once(result) == one_by_one(validator(registry=registry), topics, payloads)
    return result


# Gateway batches whose readings mostly name the gateways' own children, so that what
# else is wrong with them is what decides.
children = mostly(st.sampled_from(["c-1", "c-2", "c-3", "gw-1", "gw-2", None]), device_ids)
gateway_batches = mostly(
    objects(
        {
            "readings": mostly(
                st.lists(objects(reading_fields, {"unit": units, "device": children}), max_size=4),
                other_json,
            )
        },
        {"seq": sequences},
    ),
    other_json,
)
payloads = st.builds(
    encode, st.one_of(single_readings, batches, gateway_batches), escapes=st.booleans()
) | st.sampled_from([b"", b"{", b"\xff\xfe", b"[]", b"null", b'{"readings":[]}'])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(TOPICS), payloads), min_size=1, max_size=24))
def test_many_at_once_answer_as_one_by_one(messages: list[tuple[str, bytes]]) -> None:
    topics, texts = (list(column) for column in zip(*messages, strict=True))
    assert_same_answers(topics, texts)


# --- what producers send: valid, and taken by the fast path ---------------------------

# strftime writes year 999 as "999": producers pad it, as RFC 3339 requires.
good_timestamps = rfc3339_strings().filter(lambda text: text[:4].isdigit())
good_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**60), max_value=2**60),
)
good_metrics = st.from_regex(r"\A[a-z][a-z0-9_]{0,63}\Z")
# A quote is written escaped, and an escape sends a payload to the models: a rare unit.
good_units = st.one_of(st.none(), unit_text().map(lambda text: text.replace('"', "'")))
good_singles = st.fixed_dictionaries(
    {"metric": good_metrics, "value": good_values, "ts": good_timestamps},
    optional={"unit": good_units, "seq": st.integers(0, 2**63 - 1) | st.none()},
)


def good_batch(gateway: str) -> st.SearchStrategy[dict[str, Any]]:
    children = sorted(GATEWAYS[gateway])
    reading = st.fixed_dictionaries(
        {"metric": good_metrics, "value": good_values, "ts": good_timestamps},
        optional={"unit": good_units, "device": st.sampled_from([*children, gateway, None])},
    )
    return st.fixed_dictionaries(
        {"readings": st.lists(reading, min_size=1, max_size=6)},
        optional={"seq": st.integers(0, 2**63 - 1)},
    )


good_messages = st.one_of(
    st.tuples(st.sampled_from(TOPICS[:4]), good_singles),
    st.tuples(st.just(TOPICS[2]), good_batch("gw-1")),
    st.tuples(st.just(TOPICS[3]), good_batch("gw-2")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(good_messages, min_size=1, max_size=24))
def test_what_producers_send_takes_the_fast_path(messages: list[tuple[str, Any]]) -> None:
    topics = [topic for topic, _ in messages]
    texts = [encode(body, escapes=False) for _, body in messages]
    result = assert_same_answers(topics, texts)
    assert result.one_by_one == 0
    assert not result.refused


BAD_FIELDS: dict[str, list[Any]] = {
    "metric": ["", "Temperature", "1abc", "a" * 65, "tempé", 5],
    "value": [Raw("1e400"), Raw("-1e400"), "21.5", True, None],
    "unit": ["", "x\u202ey", "a" * 17, "\u200b", "\u0085", 1],
    "ts": [
        "2025-12-31t10:00:00Z",
        "2025-12-31 10:00:00Z",
        "2025-12-31T10:00:00z",
        "2025-12-31T10:00:00+0100",
        "2025-12-31T10:00:00+01:60",
        "2025-12-31T10:00:00,5Z",
        "2025-12-31T10:00:00.Z",
        "2025-12-31T10:00:00",
        "2025-02-30T10:00:00Z",
        "0000-12-31T10:00:00Z",
        "2025-12-31T24:00:00Z",
        "2025-12-31T10:00:60Z",
        1767225600,
    ],
    "seq": [-1, 2**63, 1.5, "1"],
    "device": ["Env-1", "c-9", "orphan", "dev-1", "x" * 65, "", 3],
    "extra": [1],
}
"""One wrong value per field: each is something a bulk check alone must refuse."""


@st.composite
def one_thing_wrong(draw: st.DrawFn) -> tuple[list[str], list[bytes]]:
    messages: list[tuple[str, dict[str, Any]]] = draw(
        st.lists(good_messages, min_size=1, max_size=12)
    )
    index = draw(st.integers(0, len(messages) - 1))
    _topic, body = messages[index]
    target: dict[str, Any] = body
    if "readings" in body:
        target = body["readings"][draw(st.integers(0, len(body["readings"]) - 1))]
    fields = [name for name in BAD_FIELDS if name in {"metric", "value", "ts", "unit", "extra"}]
    fields += ["device"] if "readings" in body else ["seq"]
    field = draw(st.sampled_from(fields))
    target[field] = draw(st.sampled_from(BAD_FIELDS[field]))
    topics = [t for t, _ in messages]
    return topics, [encode(b, escapes=False) for _, b in messages]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_thing_wrong(), st.booleans())
def test_one_thing_wrong_is_refused_as_one_by_one(
    case: tuple[list[str], list[bytes]], registry: bool
) -> None:
    topics, texts = case
    result = assert_same_answers(topics, texts, registry=registry)
    assert len(result.refused) <= 1


def test_one_bad_message_among_many_costs_itself_and_a_few_neighbours() -> None:
    ts = "2025-12-31T23:59:59.123456789Z"
    good = [
        f'{{"metric":"temperature","value":{n}.5,"ts":"{ts}","unit":"°C"}}'.encode()
        for n in range(1000)
    ]
    bad = list(good)
    bad[617] = f'{{"metric":"temperature","value":"1","ts":"{ts}"}}'.encode()
    bad[618] = f'{{"metric":"temperature","value":1,"ts":"{ts[:10]}t{ts[11:]}"}}'.encode()
    topics = [TOPICS[n % 2] for n in range(1000)]
    result = assert_same_answers(topics, bad)
    assert [(r.index, r.violation.reason.value) for r in result.refused] == [
        (617, "schema"),
        (618, "schema"),
    ]
    assert len(result.readings) == 998
    assert result.one_by_one <= 16, "halving isolates the two, not the thousand"


def test_the_window_and_the_registry_are_checked_in_bulk_too() -> None:
    narrow = validator(window=timedelta(hours=1))
    inside, outside = "2026-01-01T00:30:00Z", "2026-01-01T01:30:00Z"
    single = '{{"metric":"t","value":1,"ts":"{}"}}'
    batch = '{{"readings":[{{"metric":"t","value":1,"ts":"{}","device":"{}"}}]}}'
    topics = [TOPICS[0], TOPICS[0], TOPICS[4], TOPICS[2], TOPICS[2], TOPICS[2]]
    texts = [
        single.format(inside),
        single.format(outside),
        single.format(inside),
        batch.format(inside, "c-1"),
        batch.format(inside, "c-3"),  # gw-2's child
        batch.format(outside, "c-2"),
    ]
    result = narrow.validate_many(topics, [t.encode() for t in texts])
    assert [(r.index, r.violation.reason.value) for r in sorted(result.refused, key=str)] == [
        (1, "bad_timestamp"),
        (2, "unknown_device"),
        (4, "unauthorized_device"),
        (5, "bad_timestamp"),
    ]
    assert [(r.device, r.ts_ns) for r in result.readings] == [
        ("dev-1", 1_767_227_400_000_000_000),
        ("c-1", 1_767_227_400_000_000_000),
    ]


def test_a_model_field_without_a_fast_path_type_fails_at_import() -> None:
    class Grown(BaseModel):
        model_config = ConfigDict(extra="forbid")
        metric: str
        battery: float | None = None

    with pytest.raises(TypeError, match="battery"):
        model_struct(Grown, {"metric": str}, "GrownStruct")
    for model in (Reading, SingleReading):
        with pytest.raises(TypeError, match="out of date"):
            model_struct(model, {"metric": str}, "Partial")

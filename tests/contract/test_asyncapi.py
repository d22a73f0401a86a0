"""The committed AsyncAPI document and JSON Schemas are what the models generate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotmon_contract import (
    CONTRACT_VERSION,
    EVENT_TYPES,
    ReadingBatch,
    SingleReading,
    parse_event,
    parse_telemetry,
)
from iotmon_contract.asyncapi import (
    EVENT_SCHEMA_NAME,
    MODELS,
    asyncapi_document,
    examples,
    expected_files,
    json_schemas,
)
from tests.contract.test_schema_agreement import FORMATS, EcmaValidator, unit_text

CONTRACT_DIR = Path(__file__).resolve().parents[2] / "contract"


def test_committed_files_match_models() -> None:
    for relative, text in expected_files().items():
        committed = CONTRACT_DIR / relative
        assert committed.is_file(), f"{relative} missing: run python -m iotmon_contract.asyncapi"
        assert committed.read_text() == text, (
            f"{relative} is stale: run python -m iotmon_contract.asyncapi"
        )


def test_asyncapi_references_resolve() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["version"] == CONTRACT_VERSION

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(document):
        target: object = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict), f"dangling $ref {ref}"
            assert part in target, f"dangling $ref {ref}"
            target = target[part]
    operations = document["operations"]
    assert operations["sendTelemetry"]["bindings"]["mqtt"] == {
        "qos": 1,
        "retain": False,
        "bindingVersion": "0.2.0",
    }
    assert operations["sendStatus"]["bindings"]["mqtt"]["retain"] is True


metrics = st.from_regex(r"\A[a-z][a-z0-9_]{0,20}\Z")
values = st.floats(allow_nan=False, allow_infinity=False, width=64)
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
single_payloads = st.fixed_dictionaries(
    {"metric": metrics, "value": values, "ts": timestamps.map(datetime.isoformat)},
    optional={"unit": unit_text(1, 16), "seq": st.integers(0, 2**40)},
)


@given(single_payloads)
def test_json_schema_and_model_agree_on_valid_single_readings(payload: dict[str, object]) -> None:
    jsonschema.validate(payload, json_schemas()["SingleReading"])
    parsed = parse_telemetry(json.dumps(payload))
    assert isinstance(parsed, SingleReading)
    assert parsed.value == payload["value"]


@given(st.lists(single_payloads, min_size=1, max_size=20))
def test_batches_parse_as_batches(readings: list[dict[str, object]]) -> None:
    batch = {"readings": [{k: v for k, v in r.items() if k != "seq"} for r in readings]}
    jsonschema.validate(batch, json_schemas()["ReadingBatch"])
    parsed = parse_telemetry(json.dumps(batch))
    assert isinstance(parsed, ReadingBatch)
    assert [r.metric for r in parsed.readings] == [r["metric"] for r in readings]


def test_json_schema_rejects_what_the_model_rejects() -> None:
    schema = json_schemas()["SingleReading"]
    bad = {"metric": "Temperature", "value": 1.0, "ts": "2026-01-01T00:00:00Z"}
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(bad)), "uppercase metric must be refused"
    assert list(validator.iter_errors({**bad, "metric": "t", "extra": 1}))


PUBLISHED_AS = {
    # operation: (qos, retain), as the contract's documentation promises them
    "sendTelemetry": (1, False),
    "sendStatus": (1, True),
    "sendEvent": (1, False),
    "sendRequest": (1, False),
    "sendResponse": (1, False),
    "sendAlert": (1, False),
    "sendNotice": (1, False),
    "sendServiceStatus": (1, True),
    "sendDeadLetter": (1, False),
}


def test_every_send_operation_publishes_as_documented() -> None:
    operations = asyncapi_document()["operations"]
    sends = {name for name, op in operations.items() if op["action"] == "send"}
    assert sends == set(PUBLISHED_AS)
    for name, (qos, retain) in PUBLISHED_AS.items():
        mqtt = operations[name]["bindings"]["mqtt"]
        assert (mqtt["qos"], mqtt["retain"]) == (qos, retain), name


def test_commands_declare_their_reply_channel() -> None:
    operations = asyncapi_document()["operations"]
    for name in ("sendRequest", "receiveRequest"):
        assert operations[name]["reply"] == {"channel": {"$ref": "#/channels/response"}}


def _message_examples() -> list[tuple[str, str, dict[str, object]]]:
    found = []
    for name, message in asyncapi_document()["components"]["messages"].items():
        schema = message["payload"]["$ref"].removeprefix("#/components/schemas/")
        found += [(name, schema, example["payload"]) for example in message["examples"]]
    return found


def _validate_with_model(schema: str, text: str) -> object:
    if schema == EVENT_SCHEMA_NAME:
        return parse_event(text)
    return MODELS[schema].model_validate_json(text)


@pytest.mark.parametrize(("message", "schema", "example"), _message_examples())
def test_every_message_example_is_valid(
    message: str, schema: str, example: dict[str, object]
) -> None:
    _validate_with_model(schema, json.dumps(example))  # raises when invalid
    validator = EcmaValidator(json_schemas()[schema], format_checker=FORMATS)
    assert not list(validator.iter_errors(example)), message


def test_every_message_and_every_event_type_has_an_example() -> None:
    messages = asyncapi_document()["components"]["messages"]
    assert all(message["examples"] for message in messages.values())
    assert {example["type"] for example in examples(EVENT_SCHEMA_NAME)} == set(EVENT_TYPES)

"""The hot path's TypedDict mirrors accept exactly what the contract models accept."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from iotmon_contract import Reading, ReadingBatch, SingleReading, parse_telemetry
from iotmon_contract.payloads import WireBatch, WireReading, WireSingle, parse_telemetry_dict
from tests.contract.test_parse_fast_path import TS
from tests.contract.test_schema_agreement import batches, encode, single_readings


def _fields(reading: Any) -> tuple[object, ...]:
    keys = ("metric", "value", "ts", "unit", "device")
    if isinstance(reading, dict):
        return tuple(reading.get(key) for key in keys)
    return tuple(getattr(reading, key, None) for key in keys)


def model_answer(text: str) -> object:
    try:
        message = parse_telemetry(text)
    except ValidationError as exc:
        return exc.errors(include_url=False)
    if isinstance(message, ReadingBatch):
        return "batch", [_fields(r) for r in message.readings]
    return "single", _fields(message)


def dict_answer(text: str) -> object:
    try:
        batch, single = parse_telemetry_dict(text)
    except ValidationError as exc:
        return exc.errors(include_url=False)
    if batch is not None:
        return "batch", [_fields(r) for r in batch]
    return "single", _fields(single)


@settings(max_examples=500, deadline=None)
@given(st.one_of(single_readings, batches))
def test_dicts_and_models_give_the_same_readings_or_the_same_errors(payload: object) -> None:
    text = encode(payload)
    assert dict_answer(text) == model_answer(text), text[:500]


@pytest.mark.parametrize(
    "text",
    [
        '{"metric":"count","value":1,' + TS + ',"unit":"readings"}',
        '{"readings":[{"metric":"count","value":1,' + TS + ',"unit":null,"device":null}]}',
        '{"metric":"count","value":1,' + TS + ',"seq":null}',
        '{"readings":[{"metric":"count","value":true,' + TS + "}]}",
    ],
)
def test_edge_cases(text: str) -> None:
    assert dict_answer(text) == model_answer(text)


@pytest.mark.parametrize(
    ("wire", "model"),
    [(WireReading, Reading), (WireSingle, SingleReading), (WireBatch, ReadingBatch)],
)
def test_same_fields_and_same_required_fields(wire: Any, model: type[BaseModel]) -> None:
    wire_schema = TypeAdapter(wire).json_schema()
    model_schema = model.model_json_schema()
    assert set(wire_schema["properties"]) == set(model_schema["properties"])
    assert set(wire_schema["required"]) == set(model_schema["required"])
    assert wire_schema["additionalProperties"] is False


def test_bytearray_payloads_are_read_like_bytes() -> None:
    text = '{"readings":[{"metric":"count","value":1,' + TS + "}]}"
    assert parse_telemetry_dict(bytearray(text.encode())) == parse_telemetry_dict(text)

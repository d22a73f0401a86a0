"""``parse_telemetry`` guesses the shape from the raw text; it must answer as the union does."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from iotmon_contract import parse_telemetry
from iotmon_contract.payloads import _TELEMETRY_ADAPTER
from tests.contract.test_schema_agreement import batches, encode, single_readings

TS = '"ts":"2026-01-01T00:00:00Z"'


def union_answer(text: str | bytes) -> object:
    try:
        return _TELEMETRY_ADAPTER.validate_json(text)
    except ValidationError as exc:
        return exc.errors(include_url=False)


def fast_answer(text: str | bytes | bytearray) -> object:
    try:
        return parse_telemetry(text)
    except ValidationError as exc:
        return exc.errors(include_url=False)


@settings(max_examples=400, deadline=None)
@given(st.one_of(single_readings, batches), st.booleans())
def test_same_result_and_same_errors_as_the_union(payload: object, as_bytes: bool) -> None:
    text = encode(payload)
    raw = text.encode() if as_bytes else text
    assert fast_answer(raw) == union_answer(raw), text[:500]


@pytest.mark.parametrize(
    "text",
    [
        # The key's text where a single reading may hold it: the guess is wrong, the answer not.
        '{"metric":"count","value":1,' + TS + ',"unit":"\\"readings\\""}',
        '{"metric":"count","value":1,' + TS + ',"unit":"readings"}',
        '{"metric":"count","value":1,' + TS + ',"readings":[]}',
        '{"readings":[{"metric":"count","value":1,' + TS + "}]}",
        '{"readings":"not a list"}',
        "[]",
        "not json",
    ],
)
def test_payloads_that_mislead_the_guess(text: str) -> None:
    assert fast_answer(text) == union_answer(text)
    assert fast_answer(text.encode()) == union_answer(text.encode())


def test_bytearray_payloads_are_read_like_bytes() -> None:
    text = '{"metric":"count","value":1,' + TS + "}"
    assert fast_answer(bytearray(text.encode())) == union_answer(text)
    batch = '{"readings":[{"metric":"count","value":1,' + TS + "}]}"
    assert fast_answer(bytearray(batch.encode())) == union_answer(batch)

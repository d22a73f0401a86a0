"""The payload models accept exactly what the published JSON Schemas accept.

Hypothesis builds payload text that is sometimes valid and often not, field by field
(wrong JSON types, numbers as strings, booleans, timestamps as numbers or in forms that
are ISO 8601 but not RFC 3339, out-of-range values, missing and extra keys), and each
model's verdict on the bytes must equal the schema's verdict on the same bytes.

Two things make the schema side honest:

* ``format`` is only an annotation in draft 2020-12, and jsonschema's FormatChecker
  checks ``date-time`` only when the optional ``rfc3339-validator`` is installed: it
  is not here, so it would pass any string. The checker below asserts RFC 3339
  (section 5.6 grammar and the 5.7 calendar rules), written from the RFC, not from the
  contract's own pattern.
* jsonschema evaluates ``pattern`` with Python's ``re.search``, where ``$`` also matches
  before a trailing newline; JSON Schema patterns are ECMA-262, where it does not. The
  validator below gives ``pattern`` the ECMA meaning of ``$``.

The consumer's timestamp window (TelemetryValidator) is not part of the schema, so it is
not compared here; tests/contract/test_topics_and_validation.py covers it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema.protocols import Validator
from pydantic import BaseModel, ValidationError

from iotmon_contract import MAX_BATCH_READINGS, SingleReading, parse_event, parse_telemetry
from iotmon_contract.asyncapi import EVENT_SCHEMA_NAME, MODELS, json_schemas

# --- the schema side -------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))",
    re.ASCII,
)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def is_rfc3339_date_time(value: object) -> bool:
    """RFC 3339 section 5.6 ``date-time`` with the section 5.7 restrictions."""
    if not isinstance(value, str):
        return True  # format applies to strings only; ``type`` refuses the rest
    match = _RFC3339.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    off_hour, off_minute = (int(g) if g is not None else 0 for g in match.groups()[6:])
    days = [31, 29 if _is_leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return (
        1 <= month <= 12
        and 1 <= day <= days[month - 1]
        and hour <= 23
        and minute <= 59
        and second <= 60  # a leap second is RFC 3339
        and off_hour <= 23
        and off_minute <= 59
    )


FORMATS = jsonschema.FormatChecker()
FORMATS.checks("date-time")(is_rfc3339_date_time)


def _ecma_pattern(
    validator: Validator, pattern: str, instance: object, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if not isinstance(instance, str):
        return
    # ECMA-262 ``$`` (no multiline flag) is the end of input: Python's ``\Z``.
    assert "$" not in pattern[:-1], f"only a final $ is translated: {pattern}"
    python_pattern = pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
    if re.search(python_pattern, instance) is None:
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


# extend() is untyped in types-jsonschema; it is jsonschema's documented way to do this.
EcmaValidator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, {"pattern": _ecma_pattern}
)
SCHEMAS = json_schemas()
VALIDATORS = {
    name: EcmaValidator(schema, format_checker=FORMATS) for name, schema in SCHEMAS.items()
}


def parse(name: str, text: str) -> BaseModel:
    """The contract's parser for the payload a published schema describes."""
    if name == EVENT_SCHEMA_NAME:
        return parse_event(text)
    return MODELS[name].model_validate_json(text)


def schema_errors(name: str, text: str) -> list[str]:
    instance = json.loads(text)  # Python's parser, as a jsonschema user would
    errors = VALIDATORS[name].iter_errors(instance)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def model_errors(name: str, text: str) -> str | None:
    try:
        parse(name, text)
    except ValidationError as exc:
        return str(exc)
    return None


def assert_agree(name: str, text: str) -> None:
    by_schema = schema_errors(name, text)
    by_model = model_errors(name, text)
    assert (by_model is None) == (not by_schema), (
        f"{name} disagreement on {text[:500]}\n"
        f"schema: {by_schema or 'accepts'}\nmodel: {by_model or 'accepts'}"
    )
    if by_model is None:
        # What a consumer accepts, a producer's dump of it must be accepted again.
        parsed = parse(name, text)
        dumped = parsed.model_dump_json(exclude_none=True)
        assert parse(name, dumped) == parsed
        assert not schema_errors(name, dumped)


# --- payload text with numbers json.dumps cannot write ---------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is, e.g. ``1e400`` (Python reads it as infinity)."""

    token: str


def encode(value: object) -> str:
    if isinstance(value, Raw):
        return value.token
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value, allow_nan=False)


# --- field strategies: good and bad mixed ----------------------------------------
# Each field is mostly drawn from what should pass, so that a payload usually has one
# thing wrong with it at a time; the schema and the model must both see it.


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` most of the time, ``bad`` about one time in seven."""
    return st.integers(0, 6).flatmap(lambda roll: bad if roll == 6 else good)


other_json = st.sampled_from([None, True, False, 0, 1.5, "", "x", [], {}, [1], {"a": 1}])

metrics = mostly(
    st.from_regex(r"\A[a-z][a-z0-9_]{0,63}\Z"),
    st.one_of(
        st.sampled_from(["", "Temperature", "1abc", "_x", "co2-ppm", "temp\n", "tempé", "a" * 65]),
        st.text(max_size=8),
        other_json,
    ),
)
device_ids = mostly(
    st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,63}\Z"),
    st.one_of(
        st.sampled_from(["", "Env-1", "a/b", "a+b", "#", "_sys", "env-1\n", "x" * 65]),
        other_json,
    ),
)
values = mostly(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([0.0, -0.0, 21, 21.5, 1e308, -1e308, 5e-324]),
        st.sampled_from([Raw("2.5e-400"), Raw("1E2"), Raw("-0"), Raw("1.0")]),
    ),
    st.one_of(
        st.sampled_from([Raw("1e400"), Raw("-1e400"), Raw("1" + "0" * 400)]),
        st.sampled_from(["21.5", "21", "NaN", "Infinity", True, False, None, [21.5], {"v": 1}]),
    ),
)
sequences = mostly(
    st.one_of(
        st.integers(min_value=0, max_value=2**63 - 1),
        st.sampled_from([0, 2**63 - 1, 3.0, -0.0, 9.2e18, Raw("3.0"), Raw("1E3"), None]),
    ),
    st.one_of(
        st.integers(min_value=-5, max_value=-1),
        st.integers(min_value=2**63, max_value=2**70),
        st.sampled_from([-1.0, 1.5, 2.0**63, 1e20, Raw("1e400"), "1", True, False, [1]]),
    ),
)
# Printable text (PRINTABLE_PATTERN): written from the list of refused characters,
# not from the pattern. The allowed neighbours of each refused range are drawn often,
# so an off-by-one in a range shows.
UNPRINTABLE_RANGES = [
    (0x00, 0x1F), (0x7F, 0x9F), (0x061C, 0x061C), (0x200B, 0x200F), (0x2028, 0x2029),
    (0x202A, 0x202E), (0x2066, 0x2069), (0xFEFF, 0xFEFF),
]  # fmt: skip
UNPRINTABLE = "".join(chr(c) for low, high in UNPRINTABLE_RANGES for c in range(low, high + 1))
PRINTABLE_NEIGHBOURS = [
    " ", "~", "\xa0", "\u061b", "\u061d", "\u200a", "\u2010", "\u2027", "\u202f",
    "\u2065", "\u206a", "\ufefe", "\uff00", "\ufffd", "\U0001f600", "é", "°", "µ",
]  # fmt: skip
printable_chars = st.one_of(
    st.characters(codec="utf-8", exclude_characters=UNPRINTABLE),
    st.sampled_from(PRINTABLE_NEIGHBOURS),
)


def printable_text(min_size: int = 0, max_size: int | None = None) -> st.SearchStrategy[str]:
    return st.text(printable_chars, min_size=min_size, max_size=max_size)


@st.composite
def _with_unprintable(draw: st.DrawFn, min_size: int, max_size: int) -> str:
    text = draw(printable_text(max(min_size - 1, 0), max_size - 1))
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from(UNPRINTABLE)) + text[at:]


def free_text(min_size: int, max_size: int) -> st.SearchStrategy[Any]:
    """Strings for a printable field of ``min_size..max_size`` characters, good and bad."""
    too_short = [st.just("")] if min_size > 0 else []
    return mostly(
        printable_text(min_size, max_size),
        st.one_of(
            _with_unprintable(min_size, max_size),
            printable_text(max_size + 1, max_size + 3),
            *too_short,
            st.sampled_from([5, True, ["x"]]),
        ),
    )


def unit_text(min_size: int = 1, max_size: int = 16) -> st.SearchStrategy[str]:
    """Units (UNIT_PATTERN): printable text without a backslash."""
    return printable_text(min_size, max_size).map(lambda text: text.replace("\\", "/"))


@st.composite
def _with_backslash(draw: st.DrawFn) -> str:
    text = draw(unit_text(0, 15))
    at = draw(st.integers(0, len(text)))
    return text[:at] + "\\" + text[at:]


units = st.one_of(mostly(unit_text(), st.one_of(free_text(1, 16), _with_backslash())), st.none())
agents = st.one_of(free_text(0, 128), st.none())
states = mostly(st.sampled_from(["online", "offline"]), st.sampled_from(["ONLINE", "", "up", 1]))

offsets = st.one_of(
    st.just(UTC),
    st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    ),
)
aware = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)


@st.composite
def rfc3339_strings(draw: st.DrawFn) -> str:
    """A valid timestamp written the ways producers write one."""
    moment = draw(aware)
    digits = draw(st.integers(min_value=0, max_value=12))
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        fraction = f"{moment.microsecond:06d}" + "0" * 6
        text += "." + fraction[:digits]
    if moment.utcoffset():
        return text + moment.isoformat()[-6:]
    return text + draw(st.sampled_from(["Z", "+00:00", "-00:00"]))


NEAR_MISSES: dict[str, Callable[[str], str]] = {
    "lower_t": lambda text: f"{text[:10]}t{text[11:]}",
    "lower_z": lambda text: text[:19] + "z",
    "space": lambda text: f"{text[:10]} {text[11:]}",
    "no_seconds": lambda text: text[:16] + "Z",
    "naive": lambda text: text[:19],
    "basic_offset": lambda text: text[:19] + "+0100",
    "hour_offset": lambda text: text[:19] + "+01",
    "comma": lambda text: text[:19] + ",5Z",
    "trailing_newline": lambda text: text + "\n",
    "trailing_space": lambda text: text + " ",
    "date_only": lambda text: text[:10],
    "empty_fraction": lambda text: text[:19] + ".Z",
}
"""Ways to turn a valid timestamp into something ISO 8601-ish that RFC 3339 is not."""


def near_miss(text: str, how: str) -> str:
    return NEAR_MISSES[how](text)


timestamps = mostly(
    rfc3339_strings(),
    st.one_of(
        st.builds(near_miss, rfc3339_strings(), st.sampled_from(sorted(NEAR_MISSES))),
        st.sampled_from(
            [
                "2024-02-29T00:00:00Z",  # leap day
                "2000-02-29T00:00:00Z",
                "2026-02-29T00:00:00Z",  # not a leap year
                "2100-02-29T00:00:00Z",
                "2026-02-30T00:00:00Z",
                "2026-04-31T00:00:00Z",
                "2026-06-30T23:59:60Z",  # a leap second: RFC 3339, refused by the contract
                "2026-01-01T24:00:00Z",
                "2026-13-01T00:00:00Z",
                "2026-00-01T00:00:00Z",
                "2026-01-01T00:60:00Z",
                "2026-01-01T00:00:00+24:00",
                "2026-01-01T00:00:00+23:59",
                "2026-01-01T00:00:00-23:59",
                "2026-01-01T00:00:00+01:60",
                "0000-01-01T00:00:00Z",
                "0001-01-01T00:00:00+01:00",
                "9999-12-31T23:59:59-01:00",
                "+2026-01-01T00:00:00Z",
                "20260101T000000Z",
                "2026-1-01T00:00:00Z",
                "1767225600",
                "",
            ]
        ),
        st.sampled_from([1767225600, 1767225600.5, None, True, ["2026-01-01T00:00:00Z"]]),
    ),
)
optional_timestamps = st.one_of(timestamps, st.none())

extra_keys = st.dictionaries(
    st.sampled_from(["extra", "Value", "device_id", "kind"]), st.integers(0, 3), max_size=1
)


def objects(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Objects whose keys are sometimes missing and that sometimes carry an unknown key."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        keep = dict(required)
        if required and draw(st.integers(0, 9)) == 0:
            del keep[draw(st.sampled_from(sorted(required)))]
        built = draw(st.fixed_dictionaries(keep, optional=optional))
        if draw(st.integers(0, 9)) == 0:
            built.update(draw(extra_keys))
        return built

    return build()


reading_fields = {"metric": metrics, "value": values, "ts": timestamps}
single_readings = mostly(objects(reading_fields, {"unit": units, "seq": sequences}), other_json)
batch_readings = objects(reading_fields, {"unit": units, "device": device_ids})
batches = mostly(
    objects(
        {"readings": mostly(st.lists(batch_readings, max_size=4), other_json)},
        {"seq": sequences},
    ),
    other_json,
)
statuses = mostly(
    objects({"state": states}, {"ts": optional_timestamps, "agent": agents}), other_json
)

# --- the properties ----------------------------------------------------------------

AGREEMENT = settings(max_examples=400, deadline=None)


@AGREEMENT
@given(single_readings)
def test_single_reading_model_and_schema_agree(payload: object) -> None:
    assert_agree("SingleReading", encode(payload))


@AGREEMENT
@given(batches)
def test_reading_batch_model_and_schema_agree(payload: object) -> None:
    assert_agree("ReadingBatch", encode(payload))


@AGREEMENT
@given(statuses)
def test_device_status_model_and_schema_agree(payload: object) -> None:
    assert_agree("DeviceStatus", encode(payload))


@AGREEMENT
@given(st.one_of(single_readings, batches))
def test_parse_telemetry_accepts_what_one_of_the_schemas_accepts(payload: object) -> None:
    text = encode(payload)
    by_schema = not schema_errors("SingleReading", text) or not schema_errors("ReadingBatch", text)
    try:
        parse_telemetry(text)
    except ValidationError:
        by_model = False
    else:
        by_model = True
    assert by_model == by_schema, text[:500]


def test_the_generators_reach_both_verdicts() -> None:
    """Guard against a strategy that only ever yields one answer (a vacuous test)."""
    verdicts: set[bool] = set()

    @settings(max_examples=200, database=None)
    @given(single_readings)
    def collect(payload: object) -> None:
        verdicts.add(model_errors("SingleReading", encode(payload)) is None)

    collect()
    assert verdicts == {True, False}


# --- the cases that started this, spelled out -------------------------------------

GOOD = {"metric": "temperature", "value": 21.5, "ts": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, True),
        ({"value": 21}, True),  # a JSON integer is a number
        ({"ts": "2026-01-01T01:00:00.123+01:00"}, True),
        ({"seq": 3.0}, True),  # JSON Schema's integer includes 3.0
        ({"value": "21.5"}, False),
        ({"value": True}, False),
        ({"ts": 1767225600}, False),
        ({"ts": "1767225600"}, False),
        ({"ts": "2026-01-01 00:00:00Z"}, False),
        ({"ts": "2026-01-01T00:00Z"}, False),
        ({"ts": "2026-02-30T00:00:00Z"}, False),
        ({"seq": "3"}, False),
        ({"seq": True}, False),
        ({"metric": "temperature\n"}, False),
        ({"unit": "µS/cm"}, True),
        ({"unit": "\U0001f600" * 16}, True),  # 16 code points (32 UTF-16 units)
        ({"unit": "\U0001f600" * 17}, False),
        ({"unit": "deg\nC"}, False),
        ({"unit": "\x1b[31m"}, False),  # a terminal escape sequence
        ({"unit": "\u202edegC"}, False),  # right-to-left override
        ({"unit": "deg\u200bC"}, False),  # zero-width space
        ({"unit": "\x85"}, False),  # C1 next line
        ({"value": Raw("1e400")}, False),  # Python and pydantic both read infinity
        ({"seq": Raw("1e20")}, False),  # beyond a signed 64-bit integer
    ],
)
def test_strict_on_the_wire(change: dict[str, object], accepted: bool) -> None:
    text = encode({**GOOD, **change})
    assert (model_errors("SingleReading", text) is None) is accepted
    assert (not schema_errors("SingleReading", text)) is accepted


def test_strict_json_still_reads_integers_as_floats_and_rfc3339_as_datetimes() -> None:
    parsed = parse_telemetry('{"metric": "co2", "value": 21, "ts": "2026-01-01T01:00:00+01:00"}')
    assert isinstance(parsed, SingleReading)
    assert type(parsed.value) is float
    assert parsed.value == 21.0
    assert parsed.ts == datetime(2026, 1, 1, tzinfo=UTC)
    assert parsed.ts.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize("count", [MAX_BATCH_READINGS, MAX_BATCH_READINGS + 1])
def test_batch_size_limit_is_the_same_on_both_sides(count: int) -> None:
    assert_agree("ReadingBatch", json.dumps({"readings": [GOOD] * count}))


def test_the_date_time_check_is_really_on() -> None:
    assert "date-time" in FORMATS.checkers
    validator = VALIDATORS["DeviceStatus"]
    assert not validator.is_valid({"state": "online", "ts": "2026-02-30T00:00:00Z"})
    assert validator.is_valid({"state": "online", "ts": "2024-02-29T23:59:59.5-05:00"})

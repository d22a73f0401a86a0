"""Line protocol as InfluxDB reads it: every contract-valid reading and any dead letter
round-trips exactly through a real line-protocol parser, and through a real influxd."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import line_protocol_parser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from iotmon_contract import (
    DeadLetter,
    DeadLetterReason,
    DeviceState,
    SingleReading,
    StatusEvent,
    ValidatedReading,
)
from iotmon_contract.payloads import METRIC_PATTERN
from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_storage import StoreSettings, open_store
from iotmon_storage.base import MEASUREMENT_DEAD_LETTER, MEASUREMENT_SEEN
from iotmon_storage.influx import InfluxStore
from iotmon_storage.line_protocol import encode_dead_letters, encode_readings, encode_statuses
from iotmon_tools.localstack import InfluxdProcess

identifiers = st.from_regex(IDENTIFIER_PATTERN, fullmatch=True)
metrics = st.from_regex(METRIC_PATTERN, fullmatch=True)
# Units as the contract takes them: printable text, no backslash, 1 to 16 characters,
# with the characters line protocol must escape drawn often.
units = st.text(
    alphabet=st.one_of(st.sampled_from(" ,=\"'°µ³%/#{}[]"), st.characters()),
    min_size=1,
    max_size=16,
).filter(lambda text: _valid_unit(text))
# Subnormal floats are left out here only: the Python parser cannot read them, InfluxDB
# can (test_influxd_stores_every_encoded_reading_exactly sends one).
values = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False)
timestamps = st.integers(min_value=0, max_value=2**62)


def _valid_unit(unit: str) -> bool:
    try:
        SingleReading.model_validate(
            {"metric": "m", "value": 1.0, "ts": datetime.now(UTC), "unit": unit}
        )
    except ValidationError:
        return False
    return True


readings = st.builds(
    ValidatedReading, identifiers, identifiers, metrics, values, st.none() | units, timestamps
)


def test_the_contract_refuses_units_line_protocol_cannot_hold() -> None:
    for unit in ("a\\", "\\", "k\\W", "a\nb", "a\tb", "x\u202ey"):
        assert not _valid_unit(unit), unit
    for unit in ("degC", "µg/m³", "m s", "a,b=c", '"q"', "%"):
        assert _valid_unit(unit), unit


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(readings, min_size=1, max_size=20), timestamps)
def test_readings_round_trip_through_a_line_protocol_parser(
    batch: list[ValidatedReading], seen_at: int
) -> None:
    lines = encode_readings(batch, seen_at).split("\n")
    parsed = [line_protocol_parser.parse_line(line) for line in lines]
    assert len(parsed) == len(batch) + len({(r.tenant, r.device) for r in batch})
    for reading, point in zip(batch, parsed, strict=False):
        expected_tags = {"tenant": reading.tenant, "device": reading.device}
        if reading.unit is not None:
            expected_tags["unit"] = reading.unit
        assert point["measurement"] == reading.metric
        assert point["tags"] == expected_tags
        assert point["fields"] == {"value": reading.value}
        assert point["time"] == reading.ts_ns
    seen = parsed[len(batch) :]
    assert {p["measurement"] for p in seen} == {MEASUREMENT_SEEN}
    assert sum(p["fields"]["readings"] for p in seen) == len(batch)


# NUL is left out here only: the Python parser refuses it, InfluxDB stores it (below).
free_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=200
)


@settings(max_examples=300)
@given(free_text, free_text, st.sampled_from(list(DeadLetterReason)))
def test_dead_letters_round_trip_through_a_line_protocol_parser(
    detail: str, excerpt: str, reason: DeadLetterReason
) -> None:
    letter = DeadLetter(
        service="ingest",
        reason=reason,
        detail=detail,
        topic=f"iotmon/v1/acme/{excerpt[:20]}/telemetry",
        payload_excerpt=excerpt,
        payload_bytes=len(excerpt.encode()),
        received_at=datetime.now(UTC),
    )
    point = line_protocol_parser.parse_line(encode_dead_letters([letter], [1234]))
    assert point["measurement"] == MEASUREMENT_DEAD_LETTER
    assert point["tags"] == {"reason": reason.value, "service": "ingest"}
    fields = point["fields"]
    # Line breaks are written as a visible "\n": raw ones end a line for InfluxDB 1.x.
    assert fields["detail"] == detail.replace("\n", "\\n")
    assert fields["payload_excerpt"] == excerpt.replace("\n", "\\n")
    assert fields["topic"] == letter.topic.replace("\n", "\\n")
    assert fields["payload_bytes"] == letter.payload_bytes


@pytest.fixture(scope="module")
def influx(influxd: InfluxdProcess) -> Iterator[InfluxStore]:
    store = open_store(StoreSettings(url=influxd.url, database=f"lp_{uuid.uuid4().hex[:10]}"))
    assert isinstance(store, InfluxStore)
    store.ensure_schema()
    yield store
    store.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(readings, min_size=1, max_size=30, unique_by=lambda r: r.metric))
def test_influxd_stores_every_encoded_reading_exactly(
    influx: InfluxStore, batch: list[ValidatedReading]
) -> None:
    """Not a parser's opinion: a real InfluxDB 1.x takes every line and gives it back."""
    tenant = f"t{uuid.uuid4().hex[:8]}"
    batch = [r._replace(tenant=tenant, ts_ns=r.ts_ns % 2**61 + 10**9) for r in batch]
    batch[0] = batch[0]._replace(value=5e-324)  # subnormal: InfluxDB takes it
    influx.write_readings(batch, seen_at_ns=10**18)
    for reading in batch:
        series = influx.query(
            f'SELECT "value", "unit" FROM "{reading.metric}" '  # noqa: S608 - test query
            f"WHERE tenant = '{tenant}' AND device = '{reading.device}'"
        )
        ((ts, value, unit),) = series[0]["values"]
        assert ts == reading.ts_ns
        assert value == reading.value or math.isclose(value, reading.value)
        assert unit == reading.unit


def test_influxd_stores_dead_letters_with_any_text(influx: InfluxStore) -> None:
    text = 'nul\x00 cr\r esc\x1b quote" back\\ tab\t rtl\u202e end\\'
    letter = DeadLetter(
        service="ingest",
        reason=DeadLetterReason.NOT_JSON,
        detail=text,
        topic="iotmon/v1/acme/env-1/telemetry",
        payload_excerpt=text + "\nnext line",
        payload_bytes=99,
        received_at=datetime.now(UTC),
    )
    before = len(influx.dead_letters(1000))
    influx.write_dead_letters([letter])
    stored = influx.dead_letters(1000)
    assert len(stored) == before + 1
    assert stored[0].detail == text
    assert stored[0].payload_excerpt == text + "\\nnext line"


def test_status_lines_parse() -> None:
    point = line_protocol_parser.parse_line(
        encode_statuses([StatusEvent("acme", "env-1", DeviceState.ONLINE, 5)])
    )
    assert point["tags"] == {"tenant": "acme", "device": "env-1"}
    assert point["fields"] == {"state": "online", "online": True}


def test_a_backslash_unit_would_have_been_refused_by_influxdb(influxd: InfluxdProcess) -> None:
    """Why the contract refuses backslashes in units: InfluxDB 1.x cannot store them."""
    database = f"lp_{uuid.uuid4().hex[:10]}"
    client = httpx.Client(base_url=influxd.url)
    client.post("/query", params={"q": f'CREATE DATABASE "{database}"'})
    line = "m,device=a,tenant=t,unit=kW\\ value=1 1000000000"
    response = client.post("/write", params={"db": database}, content=line.encode())
    assert response.status_code == 400
    assert "invalid tag format" in response.text

"""Both storage backends against the same expectations: real influxd and a real SQLite file."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iotmon_contract import (
    DeadLetterReason,
    DeviceState,
    ValidatedEvent,
    ValidatedReading,
    parse_event,
)
from iotmon_contract.validation import ContractViolation, to_ns
from iotmon_storage import (
    Aggregate,
    StatusEvent,
    StoreSettings,
    TimeSeriesStore,
    open_store,
)
from iotmon_tools.localstack import InfluxdProcess

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["influxdb", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TimeSeriesStore]:
    if request.param == "influxdb":
        influxd: InfluxdProcess = request.getfixturevalue("influxd")
        settings = StoreSettings(url=influxd.url, database=f"t_{uuid.uuid4().hex[:12]}")
    else:
        settings = StoreSettings(backend="sqlite", sqlite_path=tmp_path / "store.db")
    opened = open_store(settings)
    opened.ensure_schema()
    yield opened
    opened.close()


def reading(
    device: str, metric: str, value: float, minutes: float, unit: str | None = "degC"
) -> ValidatedReading:
    return ValidatedReading(
        "acme", device, metric, value, unit, to_ns(T0 + timedelta(minutes=minutes))
    )


def test_latest_returns_newest_value_of_each_metric(store: TimeSeriesStore) -> None:
    store.write_readings(
        [
            reading("env-1", "temperature", 20.0, 0),
            reading("env-1", "temperature", 21.5, 1),
            reading("env-1", "humidity", 40.0, 0, unit="%"),
            reading("env-2", "temperature", 99.0, 5),
        ],
        seen_at_ns=to_ns(T0),
    )
    latest = store.latest("acme", "env-1")
    assert [(r.metric, r.value, r.unit) for r in latest] == [
        ("humidity", 40.0, "%"),
        ("temperature", 21.5, "degC"),
    ]
    assert latest[1].ts == T0 + timedelta(minutes=1)


def test_series_buckets_aggregate_within_range(store: TimeSeriesStore) -> None:
    store.write_readings(
        [reading("env-1", "co2", float(v), minutes=m) for m, v in enumerate(range(400, 410))],
        seen_at_ns=to_ns(T0),
    )
    buckets = store.series(
        "acme", "env-1", "co2", T0, T0 + timedelta(minutes=10), 300, Aggregate.MEAN
    )
    assert [(b.start, b.value, b.count) for b in buckets] == [
        (T0, 402.0, 5),
        (T0 + timedelta(minutes=5), 407.0, 5),
    ]
    maxima = store.series("acme", "env-1", "co2", T0, T0 + timedelta(minutes=3), 60, Aggregate.MAX)
    assert [b.value for b in maxima] == [400.0, 401.0, 402.0]


def test_aggregates_of_values_near_the_float_limit_stay_finite(store: TimeSeriesStore) -> None:
    """Two valid readings of 1.7e308 in one bucket once made InfluxDB fail to encode +Inf."""
    big = 1.7e308
    store.write_readings(
        [
            reading("env-1", "power_w", big, 0),
            reading("env-1", "power_w", big, 0.5),
            reading("env-1", "power_w", -big, 1),
            reading("env-1", "power_w", big, 1.5),
            reading("env-1", "power_w", 3.0, 2),
            reading("env-1", "power_w", 5.0, 2.5),
        ],
        seen_at_ns=to_ns(T0),
    )
    end = T0 + timedelta(minutes=3)
    means = store.series("acme", "env-1", "power_w", T0, end, 60, Aggregate.MEAN)
    assert [(b.value, b.count) for b in means] == [(big, 2), (0.0, 2), (4.0, 2)]
    for aggregate in Aggregate:
        buckets = store.series("acme", "env-1", "power_w", T0, end, 60, aggregate)
        assert all(b.value is not None and math.isfinite(b.value) for b in buckets), aggregate
    maxima = store.series("acme", "env-1", "power_w", T0, end, 180, Aggregate.MAX)
    assert [b.value for b in maxima] == [big]


def test_devices_combine_seen_and_status(store: TimeSeriesStore) -> None:
    store.write_readings([reading("env-1", "temperature", 20.0, 0)], seen_at_ns=to_ns(T0))
    store.write_statuses(
        [
            StatusEvent("acme", "env-1", DeviceState.ONLINE, to_ns(T0)),
            StatusEvent("acme", "env-1", DeviceState.OFFLINE, to_ns(T0 + timedelta(minutes=2))),
            StatusEvent("acme", "env-9", DeviceState.ONLINE, to_ns(T0)),
            StatusEvent("other", "env-1", DeviceState.ONLINE, to_ns(T0)),
        ]
    )
    devices = {d.device: d for d in store.devices("acme")}
    assert set(devices) == {"env-1", "env-9"}
    assert devices["env-1"].state is DeviceState.OFFLINE
    assert devices["env-1"].last_seen == T0
    assert devices["env-1"].state_since == T0 + timedelta(minutes=2)
    assert devices["env-9"].last_seen is None
    assert {(d.tenant, d.device) for d in store.devices()} >= {("other", "env-1")}


def test_dead_letters_round_trip(store: TimeSeriesStore) -> None:
    violation = ContractViolation(DeadLetterReason.SCHEMA, 'value: "quoted", back\\slash')
    payload = b'{"x": "a b,c=d",\n "y": 1}'
    letter = violation.dead_letter("ingest", "iotmon/v1/acme/env-1/telemetry", payload)
    store.write_dead_letters([letter, letter])
    stored = store.dead_letters()
    assert len(stored) == 2
    assert stored[0].detail == letter.detail
    # InfluxDB line protocol cannot carry a raw newline in a field: it comes back as "\\n".
    assert stored[0].payload_excerpt.replace("\\n", "\n") == payload.decode()
    assert stored[0].payload_bytes == len(payload)
    assert stored[0].reason is DeadLetterReason.SCHEMA


def test_dead_letters_filtered_by_topic_prefix(store: TimeSeriesStore) -> None:
    topics = [
        "iotmon/v1/acme/env-1/telemetry",
        "iotmon/v1/acme/env-10/telemetry",
        "iotmon/v1/acme/env.1/telemetry",
        "iotmon/v1/acmex/env-1/telemetry",
        "iotmon/v1/a_me/env-1/telemetry",
        "not/a/topic",
    ]
    store.write_dead_letters(
        [
            ContractViolation(DeadLetterReason.SCHEMA, topic).dead_letter("ingest", topic, b"{")
            for topic in topics
        ]
    )

    def found(prefixes: list[str] | None) -> set[str]:
        return {d.topic for d in store.dead_letters(100, prefixes)}

    assert found(None) == set(topics)
    assert found(["iotmon/v1/acme/"]) == set(topics[:3])
    # Ids are literal: '.' and '_' are no wildcards, and a prefix ends at its '/'.
    assert found(["iotmon/v1/acme/env-1/"]) == {topics[0]}
    assert found(["iotmon/v1/acme/env.1/", "iotmon/v1/a_me/"]) == {topics[2], topics[4]}
    assert found(["iotmon/v1/acme/env-1/", "iotmon/v1/acmex/"]) == {topics[0], topics[3]}
    assert found([]) == set()
    assert [d.topic for d in store.dead_letters(1, ["iotmon/v1/acme/"])] == [topics[2]]


def test_count_readings(store: TimeSeriesStore) -> None:
    store.write_readings(
        [reading(f"env-{i}", "temperature", 1.0, i) for i in range(50)], seen_at_ns=to_ns(T0)
    )
    assert store.count_readings("acme", "temperature") == 50
    assert store.count_readings("acme", "humidity") == 0


def sweep(seq: int, tag: str, minutes: float, device: str = "cabin-1") -> ValidatedEvent:
    ts = T0 + timedelta(minutes=minutes)
    event = parse_event(
        json.dumps(
            {
                "type": "sweep_read",
                "ts": ts.isoformat().replace("+00:00", "Z"),
                "seq": seq,
                "sweep_id": "s-1",
                "tag": tag,
                "rssi": -60.5,
            }
        )
    )
    return ValidatedEvent("acme", device, "sweep_read", seq, to_ns(ts), event)


def test_events_are_stored_once_each_and_read_back(store: TimeSeriesStore) -> None:
    # A cabin sweep stamps many reads with the same time: none may overwrite another.
    reads = [sweep(seq, f"TAG-{seq}", 1) for seq in range(40)]
    store.write_events(reads)
    store.write_events(reads[:10])  # sent again after a crash: the same events, not copies
    found = store.events("acme", "cabin-1", T0, T0 + timedelta(minutes=2))
    assert [e.seq for e in found] == list(range(40))
    assert found[3].data == {"sweep_id": "s-1", "tag": "TAG-3", "rssi": -60.5}
    assert found[3].ts == T0 + timedelta(minutes=1)
    assert {(e.type, e.device, e.tenant) for e in found} == {("sweep_read", "cabin-1", "acme")}
    assert store.events("acme", None, T0, T0 + timedelta(minutes=2), types=["tag_read"]) == []
    assert store.events("acme", "cabin-2", T0, T0 + timedelta(minutes=2)) == []
    assert len(store.events("acme", None, T0, T0 + timedelta(minutes=2), limit=5)) == 5

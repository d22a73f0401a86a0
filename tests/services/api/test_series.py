"""The time-series API on both stores: several metrics per call, raw points paged by cursor,
aggregates with fill, day buckets in a time zone, 404 for unknown metrics, device pages, CSV.

Data (conftest.fill): env-1 has temperature 20..29 at minutes 0..9 and humidity 40+m at
even minutes m; the app's clock says at(10).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from iotmon_api import crud
from iotmon_api.cursors import PointsCursor
from iotmon_contract import ValidatedReading
from iotmon_contract.validation import to_ns
from iotmon_storage import Position, TimeSeriesStore
from tests.services.api.conftest import T0, at
from tests.services.api.test_routes import error_fields, iso, when

SERIES = "/api/v1/devices/acme/env-1/series"
EXPORT = "/api/v1/devices/acme/env-1/export"


def series(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get(SERIES, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def values(body: dict[str, Any], metric: str) -> list[tuple[datetime | None, Any, Any]]:
    (entry,) = [m for m in body["data"] if m["metric"] == metric]
    assert entry["count"] == len(entry["data"])
    return [(when(p["ts"]), p["value"], p["count"]) for p in entry["data"]]


def test_several_metrics_per_call_in_the_order_asked(client: TestClient) -> None:
    body = series(client, keys="temperature,humidity", start=iso(T0), end=iso(at(10)), bucket=300)
    assert [m["metric"] for m in body["data"]] == ["temperature", "humidity"]
    assert (body["agg"], body["bucket"], body["fill"], body["tz"], body["count"]) == (
        "mean", 300, "none", None, 2,
    )  # fmt: skip
    assert values(body, "temperature") == [(T0, 22.0, 5), (at(5), 27.0, 5)]
    assert values(body, "humidity") == [(T0, 42.0, 3), (at(5), 47.0, 2)]


def test_every_metric_when_no_keys_are_given(client: TestClient) -> None:
    body = series(client, start=iso(T0), end=iso(at(10)), bucket=600, agg="sum")
    assert [m["metric"] for m in body["data"]] == ["humidity", "temperature"]
    assert values(body, "temperature") == [(T0, float(sum(range(20, 30))), 10)]


E, F = 40.0, 42.0  # humidity at minutes 0 and 2; none at 1 and 3


@pytest.mark.parametrize(
    ("agg", "fill", "expected"),
    [
        ("max", "none", [(at(0), E, 1), (at(2), F, 1)]),
        ("max", "null", [(at(0), E, 1), (at(1), None, 0), (at(2), F, 1), (at(3), None, 0)]),
        ("max", "previous", [(at(0), E, 1), (at(1), E, 0), (at(2), F, 1), (at(3), F, 0)]),
        # Only buckets of the window count: minute 4's reading is outside it.
        ("max", "linear", [(at(0), E, 1), (at(1), 41.0, 0), (at(2), F, 1), (at(3), None, 0)]),
        ("max", "-1.5", [(at(0), E, 1), (at(1), -1.5, 0), (at(2), F, 1), (at(3), -1.5, 0)]),
        ("count", "null", [(at(0), 1.0, 1), (at(1), 0.0, 0), (at(2), 1.0, 1), (at(3), 0.0, 0)]),
    ],
)
def test_fill(client: TestClient, agg: str, fill: str, expected: list[Any]) -> None:
    body = series(
        client, keys="humidity", start=iso(T0), end=iso(at(4)), bucket=60, agg=agg, fill=fill
    )
    assert values(body, "humidity") == expected
    assert body["fill"] == fill


def test_descending_buckets(client: TestClient) -> None:
    body = series(
        client, keys="temperature", start=iso(T0), end=iso(at(10)), bucket=300, order="desc"
    )
    assert values(body, "temperature") == [(at(5), 27.0, 5), (T0, 22.0, 5)]


def test_day_buckets_in_a_time_zone(client: TestClient, store: TimeSeriesStore) -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    # 23:30 and 00:30 Tokyo time on either side of a local midnight (15:00 UTC).
    midnight = datetime(2026, 11, 26, tzinfo=tokyo)
    store.write_readings(
        [
            ValidatedReading("acme", "env-1", "energy_kwh", v, "kWh", to_ns(midnight + offset))
            for v, offset in ((1.0, timedelta(minutes=-30)), (2.0, timedelta(minutes=30)))
        ],
        seen_at_ns=None,
    )
    params = {"keys": "energy_kwh", "start": "2026-11-25T00:00:00+09:00", "agg": "sum"}
    utc_days = series(client, **params, end="2026-11-27T00:00:00+09:00", bucket=86400)
    # Without tz, days are UTC days: both readings fall on 2026-11-26 UTC.
    assert [(v, c) for _, v, c in values(utc_days, "energy_kwh")] == [(3.0, 2)]
    local = series(client, **params, end="2026-11-27T00:00:00+09:00", bucket=86400, tz="Asia/Tokyo")
    assert local["tz"] == "Asia/Tokyo"
    entry = local["data"][0]["data"]
    assert [(p["ts"], p["value"]) for p in entry] == [
        ("2026-11-25T00:00:00+09:00", 1.0),
        ("2026-11-26T00:00:00+09:00", 2.0),
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tz": "Europe/Paris"}, "tz"),  # minute buckets are UTC: a zone needs whole days
        ({"tz": "Mars/Olympus", "bucket": 86400}, "tz"),
        ({"tz": "../etc/passwd", "bucket": 86400}, "tz"),
        ({"fill": "nan"}, "fill"),
        ({"fill": "1e999"}, "fill"),
        ({"fill": "zero"}, "fill"),
        ({"keys": "temperature,"}, "keys"),
        ({"keys": "Temperature"}, "keys"),
        ({"keys": ",".join(f"m{n}" for n in range(33))}, "keys"),
        ({"agg": "median"}, "agg"),
        ({"agg": "none", "bucket": 60}, "bucket"),
        ({"agg": "none", "fill": "null"}, "fill"),
        ({"agg": "mean", "limit": 10}, "limit"),
        ({"limit": 0, "agg": "none"}, "limit"),
        ({"limit": 10_001, "agg": "none"}, "limit"),
        ({"cursor": "not-ours"}, "cursor"),
        ({"cursor": "x" * 5000}, "cursor"),
        ({"order": "sideways"}, "order"),
        ({"start": iso(T0), "end": iso(at(10001 / 60)), "bucket": 1}, "bucket"),
        ({"keys": "temperature,humidity", "start": iso(T0), "end": iso(at(5001 / 60)),
          "bucket": 1}, "bucket"),
        ({"start": iso(T0), "end": iso(at(5001 / 60)), "bucket": 1}, "bucket"),
    ],
)  # fmt: skip
def test_bad_parameters_are_422_naming_the_field(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    response = client.get(SERIES, params=params)
    assert error_fields(response) == [("query", field)], response.text


LATEST = "/api/v1/devices/acme/env-1/latest"
DEVICES = "/api/v1/devices"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (LATEST, {"keys": "Temperature"}, "keys"),
        (LATEST, {"keys": ",".join(f"m{n}" for n in range(33))}, "keys"),
        (EXPORT, {"agg": "median"}, "agg"),
        (EXPORT, {"order": "up"}, "order"),
        (EXPORT, {"bucket": 60}, "bucket"),  # raw points by default: no buckets
        (EXPORT, {"fill": "null"}, "fill"),
        (EXPORT, {"agg": "mean", "fill": "nan"}, "fill"),
        (EXPORT, {"agg": "mean", "bucket": 86400, "tz": "Mars/Olympus"}, "tz"),
        (EXPORT, {"agg": "mean", "bucket": 1, "start": "2000-01-01T00:00:00Z"}, "bucket"),
        (EXPORT, {"start": iso(at(6)), "end": iso(at(5))}, "end"),
        (EXPORT, {"end": "0.5"}, "end"),
        (EXPORT, {"start": "0001-01-01T00:00:00Z"}, "start"),
        (SERIES, {"agg": "none", "end": "9999-12-31T23:59:59Z"}, "end"),
        (DEVICES, {"limit": 0}, "limit"),
        (DEVICES, {"limit": 1001}, "limit"),
        (DEVICES, {"cursor": ""}, "cursor"),
        (DEVICES, {"cursor": "!!"}, "cursor"),
        (DEVICES, {"cursor": "x" * 5000}, "cursor"),
    ],
)
def test_every_route_names_its_bad_parameter(
    client: TestClient, path: str, params: dict[str, Any], field: str
) -> None:
    """/latest, /export and the device list refuse bad input as /series does: a 422
    problem naming the one parameter."""
    response = client.get(path, params=params)
    assert error_fields(response) == [("query", field)], response.text


def test_unknown_device_and_unknown_metric_are_404_alike(client: TestClient) -> None:
    cases = [
        ("/api/v1/devices/acme/ghost/series", {}, "device acme/ghost has no readings"),
        ("/api/v1/devices/acme/ghost/latest", {}, "device acme/ghost has no readings"),
        ("/api/v1/devices/acme/ghost/export", {}, "device acme/ghost has no readings"),
        (SERIES, {"keys": "temperature,pressure,co2"},
         "device acme/env-1 has no metric 'pressure', 'co2'"),
        (SERIES, {"keys": "pressure", "agg": "none"}, "device acme/env-1 has no metric 'pressure'"),
        (EXPORT, {"keys": "pressure"}, "device acme/env-1 has no metric 'pressure'"),
        ("/api/v1/devices/acme/env-1/latest", {"keys": "pressure"},
         "device acme/env-1 has no metric 'pressure'"),
        # env-2 reported its status only: no metric at all.
        ("/api/v1/devices/acme/env-2/series", {"keys": "temperature"},
         "device acme/env-2 has no readings"),
    ]  # fmt: skip
    for path, params, detail in cases:
        response = client.get(path, params=params)
        assert response.status_code == 404, (path, params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == detail


def test_a_metric_reported_later_is_found_at_once(
    client: TestClient, store: TimeSeriesStore
) -> None:
    assert client.get(SERIES, params={"keys": "pressure"}).status_code == 404
    store.write_readings(
        [ValidatedReading("acme", "env-1", "pressure", 1013.0, "hPa", to_ns(at(3)))], None
    )
    body = series(client, keys="pressure", start=iso(T0), end=iso(at(10)), bucket=600)
    assert values(body, "pressure") == [(T0, 1013.0, 1)]


def test_latest_of_some_keys(client: TestClient) -> None:
    body = client.get("/api/v1/devices/acme/env-1/latest", params={"keys": "temperature"}).json()
    assert [(r["metric"], r["value"]) for r in body["data"]] == [("temperature", 29.0)]


def walk_points(client: TestClient, **params: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """Every page of raw points: (pages' bodies, points as (metric, ts, value))."""
    pages, points = [], []
    body = series(client, agg="none", **params)
    while True:
        pages.append(body)
        page = [(m["metric"], when(p["ts"]), p["value"]) for m in body["data"] for p in m["data"]]
        points.extend(
            sorted(page, key=lambda p: (p[1], p[0]), reverse=params.get("order") == "desc")
        )
        if body["next_cursor"] is None:
            return pages, points
        body = series(client, cursor=body["next_cursor"], limit=params.get("limit", 1000))


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 4, 15, 1000])
def test_raw_points_page_through_every_reading_once(
    client: TestClient, order: str, limit: int
) -> None:
    pages, points = walk_points(
        client, keys="temperature,humidity", start=iso(T0), end=iso(at(10)), limit=limit,
        order=order,
    )  # fmt: skip
    expected = sorted(
        [("temperature", at(m), 20.0 + m) for m in range(10)]
        + [("humidity", at(m), 40.0 + m) for m in range(0, 10, 2)],
        key=lambda p: (p[1], p[0]),
        reverse=order == "desc",
    )
    assert points == expected
    assert len(pages) == -(-15 // limit)
    assert all(sum(m["count"] for m in page["data"]) == limit for page in pages[:-1])
    for page in pages:
        assert (page["agg"], page["bucket"], page["fill"], page["order"]) == (
            "none",
            None,
            None,
            order,
        )
        assert (when(page["start"]), when(page["end"])) == (T0, at(10))
        assert all(p["count"] is None for m in page["data"] for p in m["data"])


def test_a_cursor_pins_its_query(client: TestClient, store: TimeSeriesStore) -> None:
    # Default window: the hour before now (the app's clock says at(10)).
    first = series(client, agg="none", keys="temperature", limit=3)
    cursor = first["next_cursor"]
    assert cursor
    # The same query may be repeated in full, or left out.
    again = series(client, agg="none", keys="temperature", limit=3, cursor=cursor)
    assert again == series(client, cursor=cursor, limit=3)
    assert [p["value"] for p in again["data"][0]["data"]] == [23.0, 24.0, 25.0]
    for other in ({"keys": "humidity"}, {"order": "desc"}, {"end": iso(at(9))}):
        response = client.get(SERIES, params={"cursor": cursor, **other})
        assert error_fields(response) == [("query", "cursor")], other
    response = client.get(SERIES, params={"cursor": cursor, "agg": "mean"})
    assert error_fields(response) == [("query", "cursor")]
    forged = PointsCursor(("temperature",), 0, 10**30, False, Position(10**29, "temperature"))
    response = client.get(SERIES, params={"cursor": forged.encode()})
    assert error_fields(response) == [("query", "cursor")]
    devices_cursor = client.get("/api/v1/devices", params={"limit": 1}).json()["next_cursor"]
    response = client.get(SERIES, params={"cursor": devices_cursor})
    assert error_fields(response) == [("query", "cursor")]
    assert "another listing" in response.json()["errors"][0]["msg"]


def test_device_list_pages(client: TestClient) -> None:
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        body = client.get("/api/v1/devices", params=params).json()
        assert body["count"] == len(body["data"]) == 1
        seen.extend((d["tenant"], d["device"]) for d in body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [("acme", "env-1"), ("acme", "env-2"), ("other", "env-1")]
    two = client.get("/api/v1/devices", params={"limit": 2, "tenant": "acme"}).json()
    assert (two["count"], two["next_cursor"]) == (2, None)
    bad = client.get("/api/v1/devices", params={"cursor": "eyJub3QiOiJvdXJzIn0"})
    assert error_fields(bad) == [("query", "cursor")]


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("page", [2, 5000])
def test_csv_export_of_raw_points(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    # Small store pages: the export streams several of them.
    monkeypatch.setattr(crud, "EXPORT_PAGE", page)
    response = client.get(EXPORT, params={"start": iso(T0), "end": iso(at(10))})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="acme_env-1.csv"' in response.headers["content-disposition"]
    assert response.text.startswith("ts,metric,value\r\n")
    rows = read_csv(response.text)
    assert len(rows) == 15
    _, points = walk_points(client, start=iso(T0), end=iso(at(10)))
    assert [(r["metric"], when(r["ts"]), float(r["value"])) for r in rows] == points


def test_csv_export_of_buckets_matches_the_series(client: TestClient) -> None:
    params = {"start": iso(T0), "end": iso(at(4)), "bucket": 60, "agg": "max", "fill": "null"}
    response = client.get(EXPORT, params=params)
    assert response.status_code == 200
    rows = read_csv(response.text)
    assert list(rows[0]) == ["ts", "metric", "value", "count"]
    body = series(client, **params)
    expected = sorted(
        (when(p["ts"]), m["metric"], p["value"], p["count"])
        for m in body["data"]
        for p in m["data"]
    )
    assert [
        (when(r["ts"]), r["metric"], float(r["value"]) if r["value"] else None, int(r["count"]))
        for r in rows
    ] == expected
    assert ("", "0") in [(r["value"], r["count"]) for r in rows]  # an empty bucket, filled null


def test_openapi_documents_the_new_parameters_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/api/v1/devices/{tenant}/{device}/series"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert {
        "keys",
        "start",
        "end",
        "agg",
        "bucket",
        "fill",
        "tz",
        "order",
        "limit",
        "cursor",
    } <= set(parameters)
    for name in ("keys", "start", "bucket", "fill", "tz"):
        assert parameters[name].get("examples") or parameters[name]["schema"].get("examples"), name
    schema = spec["components"]["schemas"]["MultiSeriesPublic"]
    assert schema["examples"][0]["data"][0]["metric"] == "temperature"
    export = spec["paths"]["/api/v1/devices/{tenant}/{device}/export"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"text/csv"}
    assert "ts,metric,value" in export["responses"]["200"]["content"]["text/csv"]["example"]

"""The API against real stores (influxd and SQLite): values, 404 and 422 answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from iotmon_contract import ValidatedReading
from iotmon_contract.validation import to_ns
from iotmon_storage import TimeSeriesStore
from tests.services.api.conftest import T0, at


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def error_fields(response: Response) -> list[tuple[str, ...]]:
    """The fields a 422 problem names (and that it is one: problem+json, status 422)."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["type"], body["status"]) == ("urn:iotmon:problem:validation", 422)
    return [tuple(str(p) for p in item["loc"]) for item in body["errors"]]


def test_health_reports_ok_and_backend(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["store"] in ("influxdb", "sqlite")


def test_devices_combine_telemetry_and_status(client: TestClient) -> None:
    body = client.get("/api/v1/devices", params={"tenant": "acme"}).json()
    assert body["count"] == 2
    devices = {d["device"]: d for d in body["data"]}
    assert devices["env-1"]["state"] == "online"
    assert when(devices["env-1"]["last_seen"]) == at(10)
    assert when(devices["env-1"]["state_since"]) == at(0)
    assert devices["env-2"]["state"] == "offline"
    assert when(devices["env-2"]["state_since"]) == at(5)
    assert devices["env-2"]["last_seen"] is None


def test_devices_of_all_tenants_include_unknown_state(client: TestClient) -> None:
    body = client.get("/api/v1/devices").json()
    assert {(d["tenant"], d["device"]) for d in body["data"]} == {
        ("acme", "env-1"),
        ("acme", "env-2"),
        ("other", "env-1"),
    }
    other = next(d for d in body["data"] if d["tenant"] == "other")
    assert other["state"] == "unknown"
    assert other["state_since"] is None


@pytest.mark.parametrize("tenant", ["Acme", "a/b", "_sys", "x" * 65, ""])
def test_devices_refuse_tenant_outside_contract(client: TestClient, tenant: str) -> None:
    response = client.get("/api/v1/devices", params={"tenant": tenant})
    assert response.status_code == 422
    assert error_fields(response) == [("query", "tenant")]


def test_latest_returns_newest_reading_per_metric(client: TestClient) -> None:
    body = client.get("/api/v1/devices/acme/env-1/latest").json()
    assert body["tenant"] == "acme"
    assert body["count"] == 2
    assert [(r["metric"], r["value"], r["unit"]) for r in body["data"]] == [
        ("humidity", 48.0, "%"),
        ("temperature", 29.0, "degC"),
    ]
    assert when(body["data"][1]["ts"]) == at(9)


def test_latest_of_device_without_readings_is_404(client: TestClient) -> None:
    for path in ("/api/v1/devices/acme/env-2/latest", "/api/v1/devices/nobody/env-1/latest"):
        response = client.get(path)
        assert response.status_code == 404
        assert "has no readings" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/devices/ACME/env-1/latest", "tenant"),
        ("/api/v1/devices/acme/env%2B1/latest", "device"),
        ("/api/v1/devices/acme/env-1/metrics/Temperature", "metric"),
        ("/api/v1/devices/acme/env-1/metrics/_device_seen", "metric"),
    ],
)
def test_path_ids_are_checked_against_the_contract(
    client: TestClient, path: str, field: str
) -> None:
    response = client.get(path)
    assert response.status_code == 422
    assert error_fields(response) == [("path", field)]


def test_series_mean_buckets(client: TestClient) -> None:
    params = {"start": iso(T0), "end": iso(at(10)), "bucket": 300, "agg": "mean"}
    body = client.get("/api/v1/devices/acme/env-1/metrics/temperature", params=params).json()
    assert body["count"] == 2
    assert [(when(b["start"]), b["value"], b["count"]) for b in body["data"]] == [
        (T0, 22.0, 5),
        (at(5), 27.0, 5),
    ]
    assert (body["bucket"], body["agg"], body["metric"]) == (300, "mean", "temperature")
    assert when(body["start"]) == T0
    assert when(body["end"]) == at(10)


@pytest.mark.parametrize(
    ("agg", "expected"),
    [("min", [20.0, 23.0]), ("max", [22.0, 25.0]), ("last", [22.0, 25.0]), ("count", [3.0, 3.0])],
)
def test_series_aggregates(client: TestClient, agg: str, expected: list[float]) -> None:
    params = {"start": iso(T0), "end": iso(at(6)), "bucket": 180, "agg": agg}
    body = client.get("/api/v1/devices/acme/env-1/metrics/temperature", params=params).json()
    assert [b["value"] for b in body["data"]] == expected


def test_series_defaults_to_the_last_hour_in_minute_buckets(client: TestClient) -> None:
    # The app's clock says at(10): the default window is [at(-50), at(10)).
    body = client.get("/api/v1/devices/acme/env-1/metrics/humidity").json()
    assert (body["bucket"], body["agg"]) == (60, "mean")
    assert when(body["end"]) == at(10)
    assert when(body["start"]) == at(-50)
    assert [(when(b["start"]), b["value"]) for b in body["data"]] == [
        (at(m), 40.0 + m) for m in range(0, 10, 2)
    ]


def test_series_of_unknown_metric_is_404_like_an_unknown_device(client: TestClient) -> None:
    response = client.get("/api/v1/devices/acme/env-1/metrics/pressure")
    assert response.status_code == 404
    assert response.json()["detail"] == "device acme/env-1 has no metric 'pressure'"
    response = client.get("/api/v1/devices/acme/ghost/metrics/temperature")
    assert response.status_code == 404
    assert response.json()["detail"] == "device acme/ghost has no readings"
    # A known metric without readings in the window is an empty series, not 404.
    empty = client.get(
        "/api/v1/devices/acme/env-1/metrics/temperature", params={"end": iso(at(-100))}
    )
    assert (empty.status_code, empty.json()["count"]) == (200, 0)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": iso(at(5)), "end": iso(at(5))}, "end"),
        ({"start": iso(at(6)), "end": iso(at(5))}, "end"),
        ({"start": "2026-11-25T10:00:00", "end": iso(at(5))}, "start"),
        ({"end": "yesterday"}, "end"),
        # Not RFC 3339: once read as seconds since 1970.
        ({"end": "0.5"}, "end"),
        ({"start": "1767225600"}, "start"),
        ({"start": "2026-11-25 10:00:00Z"}, "start"),
        ({"start": "2026-11-25T10:00Z"}, "start"),
        ({"end": "2026-02-30T00:00:00Z"}, "end"),
        ({"end": "2026-11-25T10:00:00Z\n"}, "end"),
        ({"bucket": 0}, "bucket"),
        ({"bucket": -60}, "bucket"),
        ({"bucket": 10**9}, "bucket"),
        ({"start": "2020-01-01T00:00:00Z", "end": iso(T0), "bucket": 60}, "bucket"),
        ({"agg": "median"}, "agg"),
    ],
)
def test_series_refuses_bad_windows_naming_the_field(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    response = client.get("/api/v1/devices/acme/env-1/metrics/temperature", params=params)
    assert response.status_code == 422, response.text
    assert error_fields(response) == [("query", field)]


@pytest.mark.parametrize("end", ["2026-11-25T10:05:00Z", "2026-11-25T11:05:00+01:00"])
def test_series_takes_rfc3339_with_any_offset(client: TestClient, end: str) -> None:
    response = client.get(
        "/api/v1/devices/acme/env-1/metrics/temperature",
        params={"start": "2026-11-25T10:00:00.000Z", "end": end, "bucket": 60},
    )
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 5


def test_series_bucket_limit_counts_buckets(client: TestClient) -> None:
    # 10,000 one-second buckets are allowed, 10,001 are not.
    path = "/api/v1/devices/acme/env-1/metrics/temperature"
    ok = client.get(path, params={"start": iso(T0), "end": iso(at(10000 / 60)), "bucket": 1})
    assert ok.status_code == 200
    too_many = client.get(path, params={"start": iso(T0), "end": iso(at(10001 / 60)), "bucket": 1})
    assert error_fields(too_many) == [("query", "bucket")]
    assert "10001 buckets" in too_many.json()["errors"][0]["msg"]


def test_dead_letters_newest_first_with_limit(client: TestClient) -> None:
    body = client.get("/api/v1/dead-letters").json()
    assert body["count"] == 2
    assert [d["reason"] for d in body["data"]] == ["schema", "not_json"]
    assert body["data"][0]["topic"] == "iotmon/v1/acme/env-1/telemetry"
    assert body["data"][0]["payload_bytes"] == 4
    limited = client.get("/api/v1/dead-letters", params={"limit": 1}).json()
    assert [d["detail"] for d in limited["data"]] == ["detail 1"]


@pytest.mark.parametrize("limit", [0, 1001, "ten"])
def test_dead_letters_limit_bounds(client: TestClient, limit: object) -> None:
    response = client.get("/api/v1/dead-letters", params={"limit": limit})
    assert response.status_code == 422
    assert error_fields(response) == [("query", "limit")]


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {
        "/health",
        "/api/v1/devices",
        "/api/v1/devices/{tenant}/{device}/latest",
        "/api/v1/devices/{tenant}/{device}/metrics/{metric}",
        "/api/v1/dead-letters",
    } <= set(spec["paths"])
    assert "DevicesPublic" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_series_of_values_near_the_float_limit_answers_finite_numbers(
    client: TestClient, store: TimeSeriesStore
) -> None:
    """Two valid readings of 1.7e308 in one bucket once made the endpoint answer 503."""
    store.write_readings(
        [
            ValidatedReading("acme", "env-9", "power_w", 1.7e308, "W", to_ns(at(0))),
            ValidatedReading("acme", "env-9", "power_w", 1.7e308, "W", to_ns(at(0.5))),
        ],
        seen_at_ns=to_ns(at(1)),
    )
    for agg in ("mean", "min", "max", "last", "count"):
        response = client.get(
            "/api/v1/devices/acme/env-9/metrics/power_w",
            params={"start": iso(T0), "end": iso(at(1)), "bucket": 60, "agg": agg},
        )
        assert response.status_code == 200, (agg, response.text)
        (bucket,) = response.json()["data"]
        assert bucket["value"] == (2 if agg == "count" else 1.7e308), agg

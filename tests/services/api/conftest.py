"""API test fixtures: a real store (influxd or SQLite) filled through its write methods."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from iotmon_api import Settings, create_app
from iotmon_contract import DeadLetterReason, DeviceState, ValidatedReading
from iotmon_contract.validation import ContractViolation, to_ns
from iotmon_storage import StatusEvent, StoreSettings, TimeSeriesStore, open_store
from iotmon_tools.localstack import InfluxdProcess

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
"""Start of the test data: readings every minute for ten minutes."""


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def reading(
    device: str, metric: str, value: float, minutes: float, unit: str | None = "degC"
) -> ValidatedReading:
    return ValidatedReading("acme", device, metric, value, unit, to_ns(at(minutes)))


def fill(store: TimeSeriesStore) -> None:
    """env-1: temperature 20..29 and humidity; env-2: status only; other/env-1: one reading."""
    store.write_readings(
        [reading("env-1", "temperature", 20.0 + m, m) for m in range(10)]
        + [reading("env-1", "humidity", 40.0 + m, m, unit="%") for m in range(0, 10, 2)],
        seen_at_ns=to_ns(at(10)),
    )
    store.write_readings(
        [ValidatedReading("other", "env-1", "co2", 800.0, "ppm", to_ns(at(3)))],
        seen_at_ns=to_ns(at(3)),
    )
    store.write_statuses(
        [
            StatusEvent("acme", "env-1", DeviceState.ONLINE, to_ns(at(0))),
            StatusEvent("acme", "env-2", DeviceState.ONLINE, to_ns(at(1))),
            StatusEvent("acme", "env-2", DeviceState.OFFLINE, to_ns(at(5))),
        ]
    )
    letters = [
        ContractViolation(reason, f"detail {i}").dead_letter(
            "ingest", f"iotmon/v1/acme/env-{i}/telemetry", b"{bad"
        )
        for i, reason in enumerate([DeadLetterReason.NOT_JSON, DeadLetterReason.SCHEMA])
    ]
    store.write_dead_letters(letters)


@pytest.fixture(params=["influxdb", "sqlite"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    if request.param == "influxdb":
        influxd: InfluxdProcess = request.getfixturevalue("influxd")
        return StoreSettings(url=influxd.url, database=f"api_{uuid.uuid4().hex[:12]}")
    return StoreSettings(backend="sqlite", sqlite_path=tmp_path / "api.db")


@pytest.fixture
def store(store_settings: StoreSettings) -> Iterator[TimeSeriesStore]:
    opened = open_store(store_settings)
    opened.ensure_schema()
    fill(opened)
    yield opened
    opened.close()


@pytest.fixture
def settings(store_settings: StoreSettings) -> Settings:
    return Settings(store=store_settings)


@pytest.fixture
def client(settings: Settings, store: TimeSeriesStore) -> Iterator[TestClient]:
    app = create_app(settings, store, clock=lambda: at(10))
    with TestClient(app) as test_client:
        yield test_client

"""Fixtures for ingest integration tests: a running IngestService against real servers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from iotmon_ingest import IngestService
from iotmon_storage import StoreSettings, TimeSeriesStore, open_store
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
from tests.services.ingest.support import ingest_settings

StartIngest = Callable[..., IngestService]


@pytest.fixture
def database() -> str:
    return f"ingest_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(influxd: InfluxdProcess, database: str) -> Iterator[TimeSeriesStore]:
    opened = open_store(StoreSettings(url=influxd.url, database=database))
    opened.ensure_schema()
    yield opened
    opened.close()


@pytest.fixture
def start_ingest(
    fresh_mosquitto: MosquittoProcess, influxd: InfluxdProcess, database: str, tmp_path: Path
) -> Iterator[StartIngest]:
    """Start ingest services (stopped at teardown); keyword arguments override settings."""
    started: list[IngestService] = []

    def _start(influx_url: str | None = None, **overrides: Any) -> IngestService:
        settings = ingest_settings(
            fresh_mosquitto, influx_url or influxd.url, database, tmp_path, **overrides
        )
        service = IngestService(settings)
        service.start()
        started.append(service)
        assert service.wait_connected(10), "ingest did not subscribe"
        return service

    yield _start
    for service in started:
        service.stop()

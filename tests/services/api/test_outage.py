"""A store outage, for real: influxd stopped under a served API answers 503 with Retry-After on
every route that needs it, and the API answers again within a second of influxd's return."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from iotmon_api import ApiServer, Settings
from iotmon_registry import Registry
from iotmon_storage import StoreSettings, open_store
from iotmon_tools.localstack import InfluxdProcess
from tests.services.api.conftest import Tokens, bearer, fill, registry_settings

PATHS = [
    "/api/v1/devices",
    "/api/v1/devices/acme/env-1/latest",
    "/api/v1/devices/acme/env-1/metrics/temperature",
    "/api/v1/devices/acme/env-1/series?keys=temperature,humidity&bucket=60",
    "/api/v1/devices/acme/env-1/series?agg=none",
    "/api/v1/devices/acme/env-1/export",
]


def test_store_outage_is_503_with_retry_after_and_recovery_is_within_a_second(
    tmp_path: Path, registry: Registry, tokens: Tokens
) -> None:
    influxd = InfluxdProcess(tmp_path / "influxd")
    influxd.start()
    store_settings = StoreSettings(url=influxd.url, database="outage", timeout_s=5)
    store = open_store(store_settings)
    store.ensure_schema()
    fill(store)
    settings = Settings(
        port=0,
        store=store_settings,
        registry=registry_settings(tmp_path),
        latest_cache_s=0.2,
        log_level="ERROR",
    )
    server = ApiServer(settings, store, registry=registry)
    server.start()
    try:
        with httpx.Client(
            base_url=server.url, headers=bearer(tokens.service), timeout=10
        ) as client:
            assert [client.get(path).status_code for path in PATHS] == [200] * len(PATHS)
            influxd.stop()
            time.sleep(0.3)  # past the latest cache: it must not hide the outage for long
            for path in PATHS:
                response = client.get(path)
                assert response.status_code == 503, (path, response.text)
                assert response.headers["retry-after"] == "5"
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["type"] == "urn:iotmon:problem:store-unavailable"
            influxd.start()  # same port and data; start() returns once it answers /ping
            back = time.monotonic()
            while client.get(PATHS[3]).status_code != 200:
                # Within the Retry-After it gave: a client that obeys it is not refused
                # again (a tighter bound only measured the machine's load).
                assert time.monotonic() - back < 5.0, "the API did not recover within 5 s"
                time.sleep(0.01)
            assert [client.get(path).status_code for path in PATHS] == [200] * len(PATHS)
    finally:
        server.stop()
        store.close()
        influxd.stop()

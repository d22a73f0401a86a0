"""The API's /metrics after real requests to a running server, read with prometheus-client's
parser: counts and latency by route template and status, never by raw path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from iotmon_api import ApiServer, Settings, create_app
from iotmon_registry import Registry
from iotmon_storage import TimeSeriesStore
from tests.services.api.conftest import Tokens, bearer
from tests.utils.prometheus import parse, scrape

LATEST = "/api/v1/devices/{tenant}/{device}/latest"


@pytest.fixture
def server(settings: Settings, store: TimeSeriesStore, registry: Registry) -> Iterator[ApiServer]:
    served = ApiServer(settings.model_copy(update={"port": 0}), store, registry=registry)
    served.start()
    yield served
    served.stop()


def test_requests_are_counted_by_route_template_and_status(
    server: ApiServer, tokens: Tokens
) -> None:
    url = server.url
    service = bearer(tokens.service)
    with httpx.Client(base_url=url, timeout=10) as http:
        for _ in range(3):
            assert http.get("/api/v1/devices/acme/env-1/latest", headers=service).status_code == 200
        assert (
            http.get("/api/v1/devices/acme/nothing-here/latest", headers=service).status_code == 404
        )
        assert http.get("/api/v1/devices/acme/env-1/latest").status_code == 401
        assert (
            http.get("/api/v1/devices/acme/env-1/latest", headers=bearer(tokens.other)).status_code
            == 403
        )
        for made_up in ("/wp-admin", "/api/v1/nope/1", "/api/v1/nope/2"):
            assert http.get(made_up).status_code == 404
        assert http.get("/health").status_code == 200
    metrics = scrape(f"{url}/metrics")

    def count(route: str, status: str) -> float:
        return metrics.value(
            "iotmon_api_requests_total", {"method": "GET", "route": route, "status": status}
        )

    assert count(LATEST, "200") == 3
    assert count(LATEST, "404") == 1
    assert count(LATEST, "401") == 1
    assert count(LATEST, "403") == 1
    assert count("/health", "200") == 1
    # Made-up paths share one series: a scan cannot grow the number of series.
    assert count("unmatched", "404") == 3
    routes = set(metrics.by_label("iotmon_api_requests_total", "route"))
    assert not any("acme" in route or "nope" in route for route in routes), routes
    # Every request was timed in its route's histogram.
    latency = {"method": "GET", "route": LATEST}
    assert metrics.value("iotmon_api_request_seconds_count", latency) == 6
    assert metrics.value("iotmon_api_request_seconds_sum", latency) > 0
    assert metrics.value("iotmon_api_request_seconds_bucket", {**latency, "le": "+Inf"}) == 6
    # Only the scrape itself is in progress while it is answered.
    assert metrics.value("iotmon_api_requests_in_progress") == 1
    again = scrape(f"{url}/metrics")
    scrapes = {"method": "GET", "route": "/metrics", "status": "200"}
    assert again.value("iotmon_api_requests_total", scrapes) == 1
    assert metrics.value("iotmon_build_info", {"service": "api"}) == 1
    assert metrics.value("process_cpu_seconds_total") > 0


def test_metrics_need_no_token_and_are_not_in_the_openapi_document(
    settings: Settings, store: TimeSeriesStore, registry: Registry
) -> None:
    from fastapi.testclient import TestClient

    app = create_app(settings, store, registry=registry)
    with TestClient(app) as client:
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        parse(response.text).family("iotmon_api_requests")
        assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_two_apps_in_one_process_keep_their_own_counts(
    settings: Settings, store: TimeSeriesStore, registry: Registry
) -> None:
    """No module-level registry: each app counts only its own requests."""
    from fastapi.testclient import TestClient

    first = create_app(settings, store, registry=registry)
    second = create_app(settings, store, registry=registry)
    with TestClient(first) as one, TestClient(second) as two:
        for _ in range(2):
            one.get("/health")
        two.get("/health")
        ones = parse(one.get("/metrics").text)
        twos = parse(two.get("/metrics").text)
    health = {"method": "GET", "route": "/health", "status": "200"}
    assert ones.value("iotmon_api_requests_total", health) == 2
    assert twos.value("iotmon_api_requests_total", health) == 1


def test_metrics_can_be_turned_off(
    settings: Settings, store: TimeSeriesStore, registry: Registry, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    app = create_app(settings.model_copy(update={"metrics": False}), store, registry=registry)
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 404

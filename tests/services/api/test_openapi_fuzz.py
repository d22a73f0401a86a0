"""The OpenAPI document, held to the running API by schemathesis (property-based).

The real app is served on loopback by uvicorn over a real influxd with data and a
real SQLite registry; schemathesis generates valid and invalid requests for every
operation from /openapi.json and sends them with a valid token: a service's, which
may read everything, and scoped ones (an operator of one tenant, a facility of one
site, a guardian), which meet the 403 paths. Checked: no 5xx,
no status code the document does not list, content types, headers and response
bodies as documented, and invalid input refused with a 4xx.

Not checked: positive_data_acceptance (a schema-valid window can still be refused:
start after end, too many buckets, both documented 422s) and the stateful phase
(the API has no links to follow).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from iotmon_alerts.adapters.database import AlertsDatabase
from iotmon_alerts.config import AlertsDatabaseSettings
from iotmon_api import ApiServer, Settings, create_app
from iotmon_api.metrics import UNMATCHED
from iotmon_registry import Registry
from iotmon_storage import StoreSettings, TimeSeriesStore, open_store
from iotmon_tools.localstack import InfluxdProcess
from tests.services.api.conftest import (
    Tokens,
    bearer,
    fill,
    fill_alerts,
    fill_registry,
    issue_tokens,
    registry_settings,
)
from tests.utils.prometheus import scrape

CONSOLE_STREAM = "/api/v1/console/alerts/stream"
EXAMPLES_PER_OPERATION = 30
"""With the coverage phase's own cases, about 15 s on this 2-core machine."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@dataclass(frozen=True)
class Served:
    url: str
    tokens: Tokens


@pytest.fixture(scope="module")
def served(influxd: InfluxdProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("fuzz")
    store_settings = StoreSettings(url=influxd.url, database=f"fuzz_{uuid.uuid4().hex[:10]}")
    store: TimeSeriesStore = open_store(store_settings)
    store.ensure_schema()
    fill(store)
    registry = Registry(registry_settings(folder)).open()
    fill_registry(registry)
    tokens = issue_tokens(registry)
    alerts_settings = AlertsDatabaseSettings(url=SecretStr(f"sqlite:///{folder / 'alerts.db'}"))
    alerts = AlertsDatabase(alerts_settings).open()
    fill_alerts(alerts)
    settings_ = Settings(
        port=0,
        store=store_settings,
        registry=registry_settings(folder),
        alerts=alerts_settings,
        log_level="ERROR",
    )
    server = ApiServer(settings_, store, registry=registry, alerts=alerts)
    server.start()
    try:
        yield Served(server.url, tokens)
    finally:
        server.stop()
        alerts.close()
        registry.close()
        store.close()


def _document() -> BaseSchema:
    """The document the app serves at /openapi.json (built without starting it).

    Loaded at import, not from the running server through a fixture:
    schemathesis' lazy fixture loader does not work with this pytest (9.2).
    """
    document = create_app(Settings()).openapi()
    # The console's alert stream never ends by design: tests/services/api/test_console_routes.py
    # reads it over a real connection.
    loaded = schemathesis.openapi.from_dict(document).exclude(path=CONSOLE_STREAM)
    loaded.config.generation.update(max_examples=EXAMPLES_PER_OPERATION)
    return loaded


schema = _document()


PRINCIPALS = ("service", "acme", "plant1", "mum")
"""Token kinds the run is made with (conftest's Tokens): service, operator, facility, guardian."""


@pytest.mark.parametrize("principal", PRINCIPALS)
@schema.parametrize()
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_the_api_does_what_its_openapi_document_says(
    case: Case[Any], served: Served, principal: str
) -> None:
    # Sent with httpx, not case.call(): schemathesis' requests transport trips over
    # urllib3-future, which another dependency (niquests) installs in urllib3's place.
    headers = dict(case.headers or {})
    # A negative case may leave the token out on purpose: then the API must answer 401.
    if not case.operation.schema.is_security_param_negated(case):
        headers.update(bearer(getattr(served.tokens, principal)))
    response = httpx.request(
        case.method,
        served.url + case.formatted_path,
        params=case.query,
        headers=headers,
        timeout=30,
    )
    case.validate_response(response, checks=CHECKS, headers=headers)


def test_after_the_property_run_metrics_parse_and_name_only_route_templates(
    served: Served,
) -> None:
    """Whatever paths the run made up, /metrics keeps one series per route template."""
    metrics = scrape(f"{served.url}/metrics")
    routes = set(metrics.by_label("iotmon_api_requests_total", "route"))
    documented = set(schema.raw_schema["paths"])
    assert routes <= documented | {"/metrics", UNMATCHED}, routes - documented
    statuses = set(metrics.by_label("iotmon_api_requests_total", "status"))
    assert statuses, "the run sent no request"
    assert all(status.isdigit() and 100 <= int(status) < 600 for status in statuses)
    assert "500" not in statuses, "the API answered 500 during the run"
    # The scoped tokens met their limits (and the document lists 403 wherever it came).
    assert "403" in statuses, statuses

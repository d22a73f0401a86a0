"""Every error is RFC 9457 problem+json, and the OpenAPI document says so for every route."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from iotmon_api import Settings, create_app
from iotmon_registry import Registry
from iotmon_storage import DeviceSummary, StoreSettings, open_store
from iotmon_storage.sqlite import SqliteStore
from tests.services.api.conftest import Tokens, bearer

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


@pytest.fixture
def store_settings(tmp_path: Path) -> StoreSettings:
    return StoreSettings(backend="sqlite", sqlite_path=tmp_path / "api.db")


def assert_problem(response: Response, status: int, type_: str, path: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_KEYS
    assert (body["status"], body["type"], body["instance"]) == (status, type_, path)
    assert body["title"]
    assert body["detail"]
    return body


def test_problem_shapes(client: TestClient, tokens: Tokens) -> None:
    assert_problem(
        client.get("/api/v1/devices", headers={"Authorization": ""}),
        401, "urn:iotmon:problem:unauthorized", "/api/v1/devices",
    )  # fmt: skip
    assert_problem(
        client.get("/api/v1/dead-letters", headers=bearer(tokens.mum)),
        403, "urn:iotmon:problem:forbidden", "/api/v1/dead-letters",
    )  # fmt: skip
    body = assert_problem(
        client.get("/api/v1/devices/acme/nobody/latest"),
        404, "urn:iotmon:problem:not-found", "/api/v1/devices/acme/nobody/latest",
    )  # fmt: skip
    assert body["detail"] == "device acme/nobody has no readings"
    # Routing's own answers: about:blank with the HTTP reason as title (RFC 9457 §4.2.1).
    unknown = assert_problem(client.get("/api/v1/nothing"), 404, "about:blank", "/api/v1/nothing")
    assert unknown["title"] == "Not Found"
    method = assert_problem(client.post("/api/v1/devices"), 405, "about:blank", "/api/v1/devices")
    assert method["title"] == "Method Not Allowed"
    assert client.post("/api/v1/devices").headers["allow"] == "GET"


def test_validation_problems_list_every_field(client: TestClient) -> None:
    response = client.get(
        "/api/v1/devices/acme/env-1/metrics/temperature",
        params={"end": "0.5", "bucket": "0", "agg": "median"},
    )
    body = assert_problem(
        response, 422, "urn:iotmon:problem:validation",
        "/api/v1/devices/acme/env-1/metrics/temperature",
    )  # fmt: skip
    fields = {tuple(e["loc"]) for e in body["errors"]}
    assert fields == {("query", "bucket"), ("query", "agg")}
    assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"])
    assert body["detail"].startswith("2 invalid parameter(s): query.bucket:")


@pytest.mark.parametrize(
    "value",
    ["0.5", "0", "1700000000", "2026-11-25", "2026-11-25T10:00:00", "2026-11-25 10:00:00Z",
     "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-25T24:00:00Z",
     "2026-11-25T10:00:00+2400", "+2026-11-25T10:00:00Z", "1500-01-01T00:00:00Z",
     "2026-11-25T10:00:00.Z", "2026-11-25T10:00:00Z ", "now"],
)  # fmt: skip
def test_time_parameters_are_strict_rfc3339(client: TestClient, value: str) -> None:
    for field in ("start", "end"):
        response = client.get(
            "/api/v1/devices/acme/env-1/metrics/temperature", params={field: value}
        )
        body = assert_problem(
            response, 422, "urn:iotmon:problem:validation",
            "/api/v1/devices/acme/env-1/metrics/temperature",
        )  # fmt: skip
        assert [tuple(e["loc"]) for e in body["errors"]] == [("query", field)]


@pytest.mark.parametrize(
    "value",
    ["2026-11-25T10:05:00Z", "2026-11-25T11:05:00+01:00",
     "2026-11-25T10:05:00.123456789Z", "2026-11-25T10:05:00.5-00:00"],
)  # fmt: skip
def test_rfc3339_forms_are_accepted(client: TestClient, value: str) -> None:
    response = client.get(
        "/api/v1/devices/acme/env-1/metrics/temperature", params={"end": value, "bucket": 60}
    )
    assert response.status_code == 200, response.text
    end = datetime.fromisoformat(response.json()["end"])
    assert end.replace(microsecond=0) == datetime(2026, 11, 25, 10, 5, tzinfo=UTC)


class BrokenStore(SqliteStore):
    """A real SQLite store with one method that fails as a bug would."""

    def devices(self, tenant: str | None = None) -> list[DeviceSummary]:
        raise ZeroDivisionError("a bug")


@pytest.fixture
def broken(tmp_path: Path, registry: Registry, settings: Settings) -> Iterator[TestClient]:
    store = BrokenStore(tmp_path / "broken.db")
    store.ensure_schema()
    app = create_app(settings, store, registry=registry)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    store.close()


def test_an_unexpected_error_is_a_500_problem_without_the_traceback(
    broken: TestClient, tokens: Tokens
) -> None:
    response = broken.get("/api/v1/devices", headers=bearer(tokens.service))
    body = assert_problem(response, 500, "urn:iotmon:problem:internal", "/api/v1/devices")
    assert "ZeroDivisionError" not in response.text
    assert "a bug" not in body["detail"]


def test_unreadable_registry_is_a_503_problem_with_retry_after(
    tmp_path: Path, tokens: Tokens, registry: Registry, settings: Settings
) -> None:
    store = open_store(settings.store)
    store.ensure_schema()
    app = create_app(settings, store, registry=registry)
    with TestClient(app) as client:
        with registry.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE tokens RENAME TO tokens_gone")
        response = client.get("/api/v1/devices", headers=bearer(tokens.service))
        body = assert_problem(
            response, 503, "urn:iotmon:problem:registry-unavailable", "/api/v1/devices"
        )
        assert response.headers["retry-after"] == "5"
        assert "no such table" in body["detail"]
    store.close()


def test_openapi_documents_every_error_as_problem_json(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"Problem", "ValidationProblem", "FieldError"} <= set(schemas)
    assert "HTTPValidationError" not in schemas
    assert set(schemas["Problem"]["required"]) == PROBLEM_KEYS
    operations = [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]
    api = [(p, m, op) for p, m, op in operations if p.startswith("/api/")]
    assert {p for p, _, _ in api} == {
        "/api/v1/me",
        "/api/v1/devices",
        "/api/v1/devices/{tenant}/{device}/latest",
        "/api/v1/devices/{tenant}/{device}/metrics/{metric}",
        "/api/v1/devices/{tenant}/{device}/series",
        "/api/v1/devices/{tenant}/{device}/export",
        "/api/v1/children",
        "/api/v1/children/{tenant}/{child}",
        "/api/v1/dead-letters",
        "/api/v1/alerts",
        "/api/v1/alerts/{tenant}/{alert_id}",
        "/api/v1/alerts/{tenant}/{alert_id}/acknowledge",
        "/api/v1/alerts/{tenant}/actions/{action_id}",
        "/api/v1/notices",
        "/api/v1/silences",
        "/api/v1/silences/{silence_id}",
        "/api/v1/subscriptions",
        "/api/v1/subscriptions/{subscription_id}",
        "/api/v1/deliveries",
        "/api/v1/deliveries/{delivery_id}/replay",
        "/api/v1/console/alerts/stream",
        "/api/v1/console/buses",
        "/api/v1/console/cameras",
    }
    for path, _method, op in api:
        responses = op["responses"]
        assert op["security"] == [{"HTTPBearer": []}], path
        for code in ("401", "403", "503"):
            content = responses[code]["content"]
            assert set(content) == {"application/problem+json"}, (path, code)
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }
        assert "WWW-Authenticate" in responses["401"]["headers"]
        assert "Retry-After" in responses["503"]["headers"]
        if op.get("parameters") or op.get("requestBody"):
            schema = responses["422"]["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ValidationProblem"}, path
        else:
            assert "422" not in responses, path
        if "{" in path:
            assert set(responses["404"]["content"]) == {"application/problem+json"}, path
    health = spec["paths"]["/health"]["get"]
    assert "security" not in health
    assert "401" not in health["responses"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"

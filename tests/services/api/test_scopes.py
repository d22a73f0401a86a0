"""Every route checks the token's scope: tenants, sites (through the registry), guardians.

Rule: naming something outside the scope is 403 whether or not it exists; inside the
scope, something missing is 404; listings show only what is in scope.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from iotmon_registry import Registry
from iotmon_registry.schema import DeviceRow
from iotmon_storage import StoreSettings
from tests.services.api.conftest import Tokens, bearer

FORBIDDEN = "urn:iotmon:problem:forbidden"


@pytest.fixture
def store_settings(tmp_path: Path) -> StoreSettings:
    """SQLite only: scope is decided before the store is asked (both stores: test_routes)."""
    return StoreSettings(backend="sqlite", sqlite_path=tmp_path / "api.db")


def get(client: TestClient, token: str, path: str, **params: Any) -> tuple[int, Any]:
    response = client.get(path, headers=bearer(token), params=params)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", path
    return response.status_code, response.json()


def forbidden(client: TestClient, token: str, path: str, **params: Any) -> str:
    status, body = get(client, token, path, **params)
    assert (status, body["type"]) == (403, FORBIDDEN), (path, body)
    return str(body["detail"])


def devices(client: TestClient, token: str, **params: Any) -> set[tuple[str, str]]:
    status, body = get(client, token, "/api/v1/devices", **params)
    assert status == 200, body
    return {(d["tenant"], d["device"]) for d in body["data"]}


def letter_topics(client: TestClient, token: str) -> list[str]:
    status, body = get(client, token, "/api/v1/dead-letters")
    assert status == 200, body
    return [d["topic"] for d in body["data"]]


def children(client: TestClient, token: str, **params: Any) -> set[tuple[str, str]]:
    status, body = get(client, token, "/api/v1/children", **params)
    assert status == 200, body
    return {(c["tenant"], c["child"]) for c in body["data"]}


def test_service_reads_every_tenant(client: TestClient, tokens: Tokens) -> None:
    assert devices(client, tokens.service) == {
        ("acme", "env-1"), ("acme", "env-2"), ("other", "env-1"),
    }  # fmt: skip
    assert devices(client, tokens.service, tenant="other") == {("other", "env-1")}
    assert get(client, tokens.service, "/api/v1/devices/other/env-1/latest")[0] == 200
    assert len(letter_topics(client, tokens.service)) == 2
    assert children(client, tokens.service) == {
        ("acme", "kid-1"), ("acme", "kid-2"), ("other", "kid-9"),
    }  # fmt: skip


def test_an_operator_reads_its_tenant_and_nothing_of_another(
    client: TestClient, tokens: Tokens
) -> None:
    assert devices(client, tokens.acme) == {("acme", "env-1"), ("acme", "env-2")}
    assert devices(client, tokens.acme, tenant="acme") == {("acme", "env-1"), ("acme", "env-2")}
    assert "for tenant 'acme', not 'other'" in forbidden(
        client, tokens.acme, "/api/v1/devices", tenant="other"
    )
    # Another tenant's device: 403 whether it exists (other/env-1) or not (other/ghost).
    forbidden(client, tokens.acme, "/api/v1/devices/other/env-1/latest")
    forbidden(client, tokens.acme, "/api/v1/devices/other/ghost/latest")
    forbidden(client, tokens.acme, "/api/v1/devices/other/env-1/metrics/co2")
    forbidden(client, tokens.acme, "/api/v1/devices/other/env-1/series", keys="co2")
    forbidden(client, tokens.acme, "/api/v1/devices/other/ghost/series")
    forbidden(client, tokens.acme, "/api/v1/devices/other/env-1/export")
    assert get(client, tokens.acme, "/api/v1/devices/acme/env-1/latest")[0] == 200
    assert get(client, tokens.acme, "/api/v1/devices/acme/ghost/latest")[0] == 404
    assert get(client, tokens.acme, "/api/v1/devices/acme/env-1/metrics/temperature")[0] == 200
    assert letter_topics(client, tokens.acme) == [
        "iotmon/v1/acme/env-1/telemetry",
        "iotmon/v1/acme/env-0/telemetry",
    ]
    assert children(client, tokens.acme) == {("acme", "kid-1"), ("acme", "kid-2")}
    forbidden(client, tokens.acme, "/api/v1/children/other/kid-9")
    forbidden(client, tokens.acme, "/api/v1/children", tenant="other")
    assert get(client, tokens.acme, "/api/v1/children/acme/kid-1")[1]["tags"] == ["E2001"]
    assert get(client, tokens.acme, "/api/v1/children/acme/ghost")[0] == 404

    assert devices(client, tokens.other) == {("other", "env-1")}
    forbidden(client, tokens.other, "/api/v1/devices/acme/env-1/latest")
    assert letter_topics(client, tokens.other) == []  # acme's dead letters stay acme's


def test_a_facility_reads_only_the_devices_on_its_sites(
    client: TestClient, tokens: Tokens, registry: Registry
) -> None:
    # env-1 is on plant-1 through its gateway gw-1; env-2 on plant-2; env-9 on none.
    assert devices(client, tokens.plant1) == {("acme", "env-1")}
    assert devices(client, tokens.plant2) == {("acme", "env-2")}
    assert get(client, tokens.plant1, "/api/v1/devices/acme/env-1/latest")[0] == 200
    detail = forbidden(client, tokens.plant1, "/api/v1/devices/acme/env-2/latest")
    assert detail == "device acme/env-2 is not on this token's sites (plant-1)"
    forbidden(client, tokens.plant1, "/api/v1/devices/acme/env-9/metrics/temperature")
    forbidden(client, tokens.plant1, "/api/v1/devices/acme/env-2/series", agg="none")
    forbidden(client, tokens.plant1, "/api/v1/devices/acme/env-2/export")
    assert get(client, tokens.plant1, "/api/v1/devices/acme/env-1/series")[0] == 200
    # Paging never shows a device out of scope: one device a page, then nothing.
    status, first = get(client, tokens.plant1, "/api/v1/devices", limit=1)
    assert (status, [d["device"] for d in first["data"]], first["next_cursor"]) == (
        200, ["env-1"], None,
    )  # fmt: skip
    forbidden(client, tokens.plant1, "/api/v1/devices/acme/ghost/latest")
    forbidden(client, tokens.plant1, "/api/v1/devices/other/env-1/latest")
    forbidden(client, tokens.plant1, "/api/v1/devices", tenant="other")
    # In scope but without readings: 404, not 403.
    assert get(client, tokens.plant1, "/api/v1/devices/acme/gw-1/latest")[0] == 404
    assert letter_topics(client, tokens.plant1) == ["iotmon/v1/acme/env-1/telemetry"]
    assert letter_topics(client, tokens.plant2) == []
    assert "not children" in forbidden(client, tokens.plant1, "/api/v1/children")
    forbidden(client, tokens.plant1, "/api/v1/children/acme/kid-1")

    # Sites come from the registry at request time: env-2 moves behind gw-1 (plant-1).
    registry.import_gateway("acme", "gw-1", ["env-1", "env-2"])
    with registry.session() as session:  # and drops its own site, so it inherits gw-1's
        row = session.get(DeviceRow, ("acme", "env-2"))
        assert row is not None
        row.site_id = None
    assert devices(client, tokens.plant1) == {("acme", "env-1"), ("acme", "env-2")}
    assert devices(client, tokens.plant2) == set()
    forbidden(client, tokens.plant2, "/api/v1/devices/acme/env-2/latest")


def test_a_guardian_reads_their_children_and_no_telemetry(
    client: TestClient, tokens: Tokens
) -> None:
    assert children(client, tokens.mum) == {("acme", "kid-1"), ("acme", "kid-2")}
    assert children(client, tokens.dad) == {("acme", "kid-2")}
    assert children(client, tokens.dad, tenant="acme") == {("acme", "kid-2")}
    status, kid = get(client, tokens.dad, "/api/v1/children/acme/kid-2")
    assert status == 200
    assert kid == {"tenant": "acme", "child": "kid-2", "name": "", "tags": ["E2002", "E2003"]}
    # Someone else's child, and a child that does not exist: the same 403.
    assert "not one of this guardian's children" in forbidden(
        client, tokens.dad, "/api/v1/children/acme/kid-1"
    )
    forbidden(client, tokens.dad, "/api/v1/children/acme/ghost")
    forbidden(client, tokens.dad, "/api/v1/children/other/kid-9")
    forbidden(client, tokens.dad, "/api/v1/children", tenant="other")
    for path in (
        "/api/v1/devices",
        "/api/v1/devices/acme/env-1/latest",
        "/api/v1/devices/acme/env-1/metrics/temperature",
        "/api/v1/devices/acme/env-1/series",
        "/api/v1/devices/acme/env-1/export",
        "/api/v1/dead-letters",
    ):
        assert "guardian token" in forbidden(client, tokens.mum, path)
    me = get(client, tokens.mum, "/api/v1/me")[1]
    assert (me["kind"], me["tenant"], me["guardian"], me["sites"]) == (
        "guardian", "acme", "mum", [],
    )  # fmt: skip


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/me",
        "/api/v1/devices",
        "/api/v1/devices/acme/env-1/latest",
        "/api/v1/devices/acme/env-1/metrics/temperature",
        "/api/v1/devices/acme/env-1/series",
        "/api/v1/devices/acme/env-1/export",
        "/api/v1/children",
        "/api/v1/children/acme/kid-1",
        "/api/v1/dead-letters",
    ],
)
def test_expired_and_revoked_tokens_read_nothing(
    client: TestClient, tokens: Tokens, path: str
) -> None:
    for token, why in ((tokens.expired, "the token expired at "), (tokens.revoked, "revoked")):
        response = client.get(path, headers=bearer(token))
        assert response.status_code == 401, path
        assert response.headers["content-type"] == "application/problem+json"
        assert why in response.json()["detail"]
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert client.get(path, headers=bearer(tokens.service)).status_code == 200

"""Alert routes: listing, acknowledging, silences, subscriptions and deliveries, each within the
token's scope (a guardian sees what is addressed to it, a facility its sites)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from iotmon_alerts.adapters.database import AlertsDatabase, DeliveryState
from iotmon_alerts.routing import EventType, Webhook
from iotmon_storage import StoreSettings
from tests.services.api.conftest import Tokens, bearer


@pytest.fixture
def store_settings(tmp_path: Path) -> StoreSettings:
    return StoreSettings(backend="sqlite", sqlite_path=tmp_path / "api.db")


def fingerprints(client: TestClient, token: str, **params: Any) -> set[str]:
    response = client.get("/api/v1/alerts", headers=bearer(token), params=params)
    assert response.status_code == 200, response.json()
    return {a["fingerprint"] for a in response.json()["data"]}


def test_each_principal_lists_the_alerts_of_its_scope_only(
    client: TestClient, tokens: Tokens
) -> None:
    assert fingerprints(client, tokens.service) == {"fp-env1", "fp-env2", "fp-kid2", "fp-other"}
    assert fingerprints(client, tokens.acme) == {"fp-env1", "fp-env2", "fp-kid2"}
    assert fingerprints(client, tokens.plant1) == {"fp-env1"}
    assert fingerprints(client, tokens.plant2) == {"fp-env2"}
    assert fingerprints(client, tokens.mum) == {"fp-kid2"}
    assert fingerprints(client, tokens.dad) == {"fp-kid2"}
    assert fingerprints(client, tokens.acme, device="env-2") == {"fp-env2"}
    assert fingerprints(client, tokens.acme, rule="child_left_aboard") == {"fp-kid2"}
    other = client.get("/api/v1/alerts", headers=bearer(tokens.acme), params={"tenant": "other"})
    assert other.status_code == 403


def test_a_guardian_sees_no_other_family_in_the_recipients(
    client: TestClient, tokens: Tokens
) -> None:
    (alert,) = client.get("/api/v1/alerts", headers=bearer(tokens.dad)).json()["data"]
    assert alert["recipients"] == [
        {"role": "driver", "id": "drv-1"}, {"role": "guardian", "id": "dad"},
    ]  # fmt: skip
    assert alert["details"]["notification"]["recipients"] == alert["recipients"]
    notices = client.get("/api/v1/notices", headers=bearer(tokens.mum)).json()["data"]
    assert [n["kind"] for n in notices] == ["boarded"]
    assert client.get("/api/v1/notices", headers=bearer(tokens.dad)).json()["data"] == []


def test_reading_one_alert_outside_the_scope_is_not_found(
    client: TestClient, tokens: Tokens
) -> None:
    listed = client.get("/api/v1/alerts", headers=bearer(tokens.acme)).json()["data"]
    ids = {a["fingerprint"]: a["id"] for a in listed}
    ok = client.get(f"/api/v1/alerts/acme/{ids['fp-env1']}", headers=bearer(tokens.plant1))
    assert ok.status_code == 200
    hidden = client.get(f"/api/v1/alerts/acme/{ids['fp-env2']}", headers=bearer(tokens.plant1))
    assert hidden.status_code == 404
    assert (
        client.get(f"/api/v1/alerts/acme/{ids['fp-env1']}", headers=bearer(tokens.mum)).status_code
        == 404
    )
    assert (
        client.get(
            f"/api/v1/alerts/other/{ids['fp-env1']}", headers=bearer(tokens.acme)
        ).status_code
        == 403
    )


def test_acknowledging_writes_an_action_for_the_service(
    client: TestClient, tokens: Tokens, alerts_database: AlertsDatabase
) -> None:
    listed = client.get("/api/v1/alerts", headers=bearer(tokens.acme)).json()["data"]
    alert_id = next(a["id"] for a in listed if a["fingerprint"] == "fp-env1")
    path = f"/api/v1/alerts/acme/{alert_id}/acknowledge"
    before = alerts_database.revision()
    response = client.post(path, headers=bearer(tokens.plant1), json={"reason": "on it"})
    assert response.status_code == 202, response.json()
    action = response.json()
    assert (action["state"], action["reason"], action["fingerprint"]) == (
        "pending",
        "on it",
        "fp-env1",
    )
    assert alerts_database.revision() > before
    (pending,) = alerts_database.pending_actions()
    assert pending.by.startswith("facility:")
    # Refused: a service token only reads, a guardian cannot, an empty reason is invalid.
    assert (
        client.post(path, headers=bearer(tokens.service), json={"reason": "x"}).status_code == 403
    )
    assert client.post(path, headers=bearer(tokens.mum), json={"reason": "x"}).status_code == 403
    bad = client.post(path, headers=bearer(tokens.acme), json={"reason": ""})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert client.post(path, headers=bearer(tokens.acme), json={"why": "x"}).status_code == 422
    status = client.get(f"/api/v1/alerts/acme/actions/{action['id']}", headers=bearer(tokens.acme))
    assert status.json()["state"] == "pending"


def test_silences_are_for_operators_of_their_tenant(client: TestClient, tokens: Tokens) -> None:
    body = {"tenant": "acme", "matchers": {"site": "plant-1"}, "duration_s": 3600,
            "comment": "maintenance"}  # fmt: skip
    created = client.post("/api/v1/silences", headers=bearer(tokens.acme), json=body)
    assert created.status_code == 201, created.json()
    silence = created.json()
    assert silence["active"] is True
    assert (
        client.post("/api/v1/silences", headers=bearer(tokens.plant1), json=body).status_code == 403
    )
    other = {**body, "tenant": "other"}
    assert (
        client.post("/api/v1/silences", headers=bearer(tokens.acme), json=other).status_code == 403
    )
    bad = {**body, "matchers": {"colour": "red"}}
    assert client.post("/api/v1/silences", headers=bearer(tokens.acme), json=bad).status_code == 422
    listed = client.get("/api/v1/silences", headers=bearer(tokens.acme)).json()
    assert listed["count"] == 1
    expired = client.delete(f"/api/v1/silences/{silence['id']}", headers=bearer(tokens.acme))
    assert expired.json()["active"] is False


def test_subscriptions_take_the_scope_of_their_creator_and_deliveries_replay(
    client: TestClient, tokens: Tokens, alerts_database: AlertsDatabase
) -> None:
    def create(token: str) -> dict[str, Any]:
        body = {"tenant": "acme", "url": "http://127.0.0.1:9/hook"}
        response = client.post("/api/v1/subscriptions", headers=bearer(token), json=body)
        assert response.status_code == 201, response.json()
        return dict(response.json())

    ops, plant, mum = create(tokens.acme), create(tokens.plant1), create(tokens.mum)
    assert (ops["owner"], plant["owner"], plant["sites"]) == ("tenant", "facility", ["plant-1"])
    assert (mum["owner"], mum["guardian"]) == ("guardian", "mum")
    assert mum["secret"].startswith("whsec_")
    listing = client.get("/api/v1/subscriptions", headers=bearer(tokens.mum)).json()
    assert [s["id"] for s in listing["data"]] == [mum["id"]]
    assert "secret" not in listing["data"][0]
    assert client.get("/api/v1/subscriptions", headers=bearer(tokens.acme)).json()["count"] == 3
    refused = client.delete(f"/api/v1/subscriptions/{ops['id']}", headers=bearer(tokens.mum))
    assert refused.status_code == 404
    bad_url = {"tenant": "acme", "url": "ftp://x"}
    assert (
        client.post("/api/v1/subscriptions", headers=bearer(tokens.acme), json=bad_url).status_code
        == 422
    )

    # A dead delivery of mum's subscription: listed for mum, replayed with the same id.
    subscription = alerts_database.subscription(mum["id"])
    assert subscription is not None
    webhook = Webhook("msg_" + "a" * 32, subscription, EventType.NOTICE, {"type": "x"})
    alerts_database.record([], [], [webhook], {}, datetime.now(UTC))
    alerts_database.failed(webhook.id, "HTTP 500", 500, None)
    dead = client.get("/api/v1/deliveries", headers=bearer(tokens.mum), params={"state": "dead"})
    assert [d["id"] for d in dead.json()["data"]] == [webhook.id]
    assert client.get("/api/v1/deliveries", headers=bearer(tokens.plant1)).json()["count"] == 0
    replay = client.post(f"/api/v1/deliveries/{webhook.id}/replay", headers=bearer(tokens.mum))
    assert replay.status_code == 200, replay.json()
    assert (replay.json()["state"], replay.json()["attempts"]) == ("pending", 0)
    again = client.post(f"/api/v1/deliveries/{webhook.id}/replay", headers=bearer(tokens.mum))
    assert again.status_code == 409
    item = alerts_database.outbox_item(webhook.id)
    assert item is not None
    assert item.state is DeliveryState.PENDING

"""The alert service end to end on real parts: mosquitto, SQLite, a loopback HTTP receiver
that verifies every signature, the registry for sites."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from iotmon_alerts.adapters.database import AlertQuery, AlertsDatabase
from iotmon_alerts.config import AlertsSettings
from iotmon_alerts.routing import Owner, SubscriptionFilter
from iotmon_alerts.service import AlertService
from iotmon_contract import (
    alert_filter,
    dead_letter_topic,
    event_topic,
    telemetry_topic,
)
from iotmon_registry import Registry
from iotmon_tools.localstack import MosquittoProcess, WebhookReceiver
from tests.services.alerts.support import (
    make_settings,
    open_database,
    reading,
    wait_until,
    write_rules,
)
from tests.utils.mqtt_peer import Peer

RULES = """\
tenant: acme
rules:
  - name: hot
    type: threshold
    metric: temperature
    above: 30
    clear: 28
  - name: broken
    type: fault
"""


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, mosquitto: MosquittoProcess) -> AlertsSettings:
    made = make_settings(tmp_path, mosquitto)
    write_rules(made, "acme", RULES)
    with Registry(made.registry) as registry:
        registry.add_site("acme", "plant-1")
        registry.add_site("acme", "plant-2")
        registry.add_device("acme", "env-1", site="plant-1")
        registry.add_device("acme", "env-2", site="plant-2")
    return made


@pytest.fixture
def database(settings: AlertsSettings) -> Iterator[AlertsDatabase]:
    db = open_database(settings)
    yield db
    db.close()


@pytest.fixture
def peer(mosquitto: MosquittoProcess) -> Iterator[Peer]:
    client = Peer(mosquitto.port, None)
    client.connect()
    yield client
    client.close()


def subscribe(
    database: AlertsDatabase, receiver: WebhookReceiver, path: str, owner: Owner, **scope: object
) -> str:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    created = database.add_subscription(
        scope.pop("tenant", "acme"),  # type: ignore[arg-type]
        owner,
        receiver.url(path),
        secret=secret,
        now=datetime.now(UTC),
        **scope,  # type: ignore[arg-type]
    )
    receiver.add_endpoint(path, secret)
    return created.id


def test_a_threshold_alert_reaches_mqtt_sql_and_the_scoped_webhooks(
    settings: AlertsSettings, database: AlertsDatabase, receiver: WebhookReceiver, peer: Peer
) -> None:
    subscribe(database, receiver, "/ops", Owner.TENANT)
    subscribe(database, receiver, "/plant1", Owner.FACILITY, sites=frozenset({"plant-1"}))
    subscribe(database, receiver, "/plant2", Owner.FACILITY, sites=frozenset({"plant-2"}))
    subscribe(
        database,
        receiver,
        "/crit",
        Owner.TENANT,
        filter=SubscriptionFilter(min_severity="critical"),
    )
    peer.subscribe(alert_filter("acme"))
    service = AlertService(settings)
    service.start()
    try:
        assert service.client is not None
        assert service.client.wait_subscribed(10)
        peer.publish(telemetry_topic("acme", "env-1"), reading("temperature", 31.5))
        ops = receiver.wait_for(1, 10, "/ops")
        assert len(ops) == 1
        data = ops[0].payload["data"]
        assert ops[0].payload["type"] == "iotmon.alerts"
        (alert,) = data["alerts"]
        assert (alert["rule"], alert["state"], alert["subject"]) == (
            "hot", "firing", {"device": "env-1", "site": "plant-1"},
        )  # fmt: skip
        assert len(receiver.wait_for(1, 5, "/plant1")) == 1
        # Back in the hysteresis band: nothing; below clear: resolved to both.
        peer.publish(telemetry_topic("acme", "env-1"), reading("temperature", 29))
        peer.publish(telemetry_topic("acme", "env-1"), reading("temperature", 27))
        resolved = receiver.wait_for(2, 10, "/ops")
        assert [r.payload["data"]["alerts"][0]["state"] for r in resolved] == [
            "firing", "resolved",
        ]  # fmt: skip
        assert receiver.received("/plant2") == []
        assert receiver.received("/crit") == []
        assert receiver.bad_signatures == 0
        # Published on MQTT as contract AlertMessages.
        wait_until(lambda: peer.messages.qsize() >= 2, what="two alert messages")
        states = [json.loads(m.payload)["state"] for m in peer.drain()]
        assert states == ["firing", "resolved"]
        # In SQL, with its history.
        (row,) = database.alerts(AlertQuery(tenant="acme"))
        assert row.alert.state.value == "resolved"
        assert row.alert.subject.site == "plant-1"
    finally:
        service.stop()
    assert receiver.wait_for(2, 1, "/plant1")[1].payload["data"]["alerts"][0]["state"] == "resolved"


def test_acknowledging_through_the_database_reaches_the_running_service(
    settings: AlertsSettings, database: AlertsDatabase, receiver: WebhookReceiver, peer: Peer
) -> None:
    subscribe(database, receiver, "/ops", Owner.TENANT)
    service = AlertService(settings)
    service.start()
    try:
        assert service.client is not None
        assert service.client.wait_subscribed(10)
        fault = {"type": "fault", "ts": datetime.now(UTC).isoformat(), "seq": 1,
                 "component": "modbus", "code": "timeout", "severity": "error"}  # fmt: skip
        peer.publish(event_topic("acme", "gw-1"), json.dumps(fault).encode())
        (fired,) = receiver.wait_for(1, 10, "/ops")
        fingerprint = fired.payload["data"]["alerts"][0]["fingerprint"]
        action = database.add_action(
            "acme", "acknowledge", fingerprint, "op-7", "technician sent", datetime.now(UTC)
        )
        acked = receiver.wait_for(2, 10, "/ops")[1].payload["data"]["alerts"][0]
        assert acked["state"] == "acknowledged"
        assert acked["details"]["ack_reason"] == "technician sent"
        wait_until(lambda: database.action(action.id).state.value == "done")  # type: ignore[union-attr]
        unknown = database.add_action("acme", "acknowledge", "nope", "op", "?", datetime.now(UTC))
        wait_until(lambda: database.action(unknown.id).state.value == "failed")  # type: ignore[union-attr]
        assert "no active alert" in (database.action(unknown.id).result or "")  # type: ignore[union-attr]
    finally:
        service.stop()


def test_bad_messages_are_refused_counted_and_dead_lettered_and_the_service_goes_on(
    settings: AlertsSettings, database: AlertsDatabase, receiver: WebhookReceiver, peer: Peer
) -> None:
    subscribe(database, receiver, "/ops", Owner.TENANT)
    peer.subscribe(dead_letter_topic("alerts"))
    service = AlertService(settings)
    service.start()
    try:
        assert service.client is not None
        assert service.client.wait_subscribed(10)
        topic = telemetry_topic("acme", "env-1")
        peer.publish(topic, b"{not json")
        peer.publish(topic, b'{"metric":"temperature","value":"hot","ts":"2026-01-01T00:00:00Z"}')
        peer.publish(event_topic("acme", "gw-1"), b'{"type":"explosion","ts":"x","seq":1}')
        peer.publish(event_topic("acme", "gw-1"), b"\xff\xfe")
        peer.publish(topic, reading("temperature", 40))
        receiver.wait_for(1, 10, "/ops")
        wait_until(lambda: service.counters.refused_count() >= 4, what="four refusals")
        refused = service.counters.snapshot()["refused"]
        assert refused == {"not_json": 2, "schema": 1, "unknown_event_type": 1}, refused
        wait_until(lambda: peer.messages.qsize() >= 4, what="four dead letters")
        letters = [json.loads(m.payload) for m in peer.drain()]
        assert {letter["reason"] for letter in letters} == {
            "not_json", "schema", "unknown_event_type",
        }  # fmt: skip
        assert all(letter["service"] == "alerts" for letter in letters)
    finally:
        service.stop()


def test_a_bad_rule_file_reload_keeps_the_old_rules_and_says_why(
    settings: AlertsSettings,
    database: AlertsDatabase,
    receiver: WebhookReceiver,
    peer: Peer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    subscribe(database, receiver, "/ops", Owner.TENANT)
    service = AlertService(settings)
    service.start()
    try:
        assert service.client is not None
        assert service.client.wait_subscribed(10)
        write_rules(settings, "acme", RULES.replace("above: 30", "above: hot"))
        wait_until(lambda: service.counters.refused_count("rule_file") == 1, what="refusal")
        assert any(
            "acme.yaml: rules.0.above" in r.getMessage()
            and "line 6" in r.getMessage()
            and "keeping the rules loaded before" in r.getMessage()
            for r in caplog.records
        ), [r.getMessage() for r in caplog.records]
        # The old rules still work.
        peer.publish(telemetry_topic("acme", "env-1"), reading("temperature", 31))
        assert len(receiver.wait_for(1, 10, "/ops")) == 1
        # A good file is taken without a restart: the threshold moved to 50.
        write_rules(settings, "acme", RULES.replace("above: 30", "above: 50").replace(
            "clear: 28", "clear: 45"))  # fmt: skip
        wait_until(lambda: service.counters.get("rule_reloads") >= 1, what="reload")
        peer.publish(telemetry_topic("acme", "env-2"), reading("temperature", 40))
        peer.publish(telemetry_topic("acme", "env-2"), reading("temperature", 51))
        second = receiver.wait_for(2, 10, "/ops")
        assert second[1].payload["data"]["alerts"][0]["subject"]["device"] == "env-2"
        assert second[1].payload["data"]["alerts"][0]["details"]["threshold"] == 50
    finally:
        service.stop()

"""Every webhook delivered, each webhook-id once per receiver after de-duplication, though the
receiver is down for a while and the alert service is killed (SIGKILL) and restarted meanwhile.

The alert service runs as its own process (``iotmon-alerts run``) so it can be killed for
real: nothing it held only in memory survives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from iotmon_alerts.adapters.database import AlertsDatabase, DeliveryState
from iotmon_alerts.config import AlertsSettings
from iotmon_alerts.routing import Owner
from iotmon_contract import telemetry_topic
from iotmon_tools.localstack import MosquittoProcess, WebhookReceiver
from tests.services.alerts.support import (
    ServiceProcess,
    make_settings,
    reading,
    service_environment,
    wait_online,
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
"""
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def setup(tmp_path: Path, fresh_mosquitto: MosquittoProcess) -> tuple[AlertsSettings, Path]:
    settings = make_settings(tmp_path, fresh_mosquitto)
    write_rules(settings, "acme", RULES)
    return settings, tmp_path


def test_receiver_down_and_service_killed_every_webhook_arrives_once_by_id(
    setup: tuple[AlertsSettings, Path], fresh_mosquitto: MosquittoProcess
) -> None:
    settings, folder = setup
    receiver = WebhookReceiver()
    url = receiver.add_endpoint("/hook", SECRET)
    with AlertsDatabase(settings.database) as database:
        database.add_subscription("acme", Owner.TENANT, url, secret=SECRET, now=datetime.now(UTC))
    service = ServiceProcess(service_environment(settings), folder / "alerts.log")
    peer = Peer(fresh_mosquitto.port, None)
    peer.connect()
    receiver.start()
    service.start()
    try:
        database = AlertsDatabase(settings.database).open()
        topic = telemetry_topic

        def fire(first: int, last: int) -> None:
            for index in range(first, last):
                peer.publish(topic("acme", f"env-{index}"), reading("temperature", 40 + index))

        # Phase 1: all well. The session exists from here on (queued while killed).
        wait_online(peer, settings, service.process)
        fire(0, 5)
        assert len(receiver.wait_for(5, 30)) == 5
        # The receiver records a webhook before it answers: stopped before the last answer
        # went out, that delivery would fail and count below. Down only once all are done.
        wait_until(
            lambda: database.outbox_counts() == {DeliveryState.DELIVERED.value: 5},
            30,
            "the first five delivered",
        )
        # Phase 2: the receiver goes down; deliveries fail and wait for their retries.
        receiver.stop()
        fire(5, 15)

        def failed_once() -> int:
            return sum(1 for i in database.outbox(state=DeliveryState.PENDING) if i.attempts)

        wait_until(
            lambda: failed_once() == 10,
            60,
            "ten failed first attempts",
        )
        pending_ids = {i.id for i in database.outbox(state=DeliveryState.PENDING)}
        # Phase 3: the service is killed; more alerts are raised while it is away.
        service.kill()
        fire(15, 25)
        # Phase 4: restarted, then the receiver comes back on the same port.
        service.start()
        wait_until(
            lambda: len(database.outbox(state=DeliveryState.PENDING)) == 20,
            60,
            "the ten raised while killed recorded",
        )
        receiver.start()
        arrived = receiver.wait_for(25, 60)
        assert len(arrived) == 25, f"{len(arrived)} of 25 arrived"
        ids = [r.webhook_id for r in arrived]
        assert len(set(ids)) == 25
        assert pending_ids <= set(ids), "a retried webhook changed its id"
        devices = sorted(r.payload["data"]["alerts"][0]["subject"]["device"] for r in arrived)
        assert devices == sorted(f"env-{i}" for i in range(25))
        assert receiver.bad_signatures == 0
        wait_until(
            lambda: database.outbox_counts() == {DeliveryState.DELIVERED.value: 25},
            30,
            "every outbox row delivered",
        )
        database.close()
    finally:
        service.stop()
        receiver.stop()
        peer.close()

"""Every webhook delivered, each webhook-id once per receiver after de-duplication, though the
receiver is down for a while and the alert service is killed (SIGKILL) and restarted meanwhile.

The alert service runs as its own process (``iotmon-alerts run``) so it can be killed for
real: nothing it held only in memory survives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from iotmon_alerts.adapters.database import AlertsDatabase, DeliveryState
from iotmon_alerts.config import AlertsSettings
from iotmon_alerts.routing import Owner
from iotmon_contract import telemetry_topic
from iotmon_tools.localstack import MosquittoProcess, WebhookReceiver
from tests.services.alerts.support import (
    make_settings,
    reading,
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


def _environment(settings: AlertsSettings) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("IOTMON_")}
    return {
        **keep,
        "IOTMON_ALERTS_INSTANCE_ID": settings.instance_id,
        "IOTMON_ALERTS_MQTT__HOST": settings.mqtt.host,
        "IOTMON_ALERTS_MQTT__PORT": str(settings.mqtt.port),
        "IOTMON_ALERTS_MQTT__SHARE_GROUP": "",
        "IOTMON_ALERTS_DATABASE__URL": settings.database.url.get_secret_value(),
        "IOTMON_ALERTS_REGISTRY__URL": settings.registry.url.get_secret_value(),
        "IOTMON_ALERTS_RULES_DIR": str(settings.rules_dir),
        "IOTMON_ALERTS_TICK_INTERVAL_S": "0.1",
        "IOTMON_ALERTS_WEBHOOKS__BACKOFF_BASE_S": "0.2",
        "IOTMON_ALERTS_WEBHOOKS__BACKOFF_MAX_S": "1",
        "IOTMON_ALERTS_WEBHOOKS__POLL_INTERVAL_S": "0.1",
        "IOTMON_ALERTS_WEBHOOKS__TIMEOUT_S": "2",
        "IOTMON_ALERTS_WEBHOOKS__MAX_ATTEMPTS": "100",
    }


class ServiceProcess:
    def __init__(self, settings: AlertsSettings, log: Path) -> None:
        self._env = _environment(settings)
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from iotmon_alerts.cli import run; run()", "run"],
                env=self._env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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
    service = ServiceProcess(settings, folder / "alerts.log")
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
        wait_online(peer, settings)
        fire(0, 5)
        assert len(receiver.wait_for(5, 20)) == 5
        # Phase 2: the receiver goes down; deliveries fail and wait for their retries.
        receiver.stop()
        fire(5, 15)

        def failed_once() -> int:
            return sum(1 for i in database.outbox(state=DeliveryState.PENDING) if i.attempts)

        wait_until(
            lambda: failed_once() == 10,
            30,
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
            30,
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
            10,
            "every outbox row delivered",
        )
        database.close()
    finally:
        service.stop()
        receiver.stop()
        peer.close()

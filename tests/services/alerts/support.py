"""Alert-service test helpers: settings on temp folders, rule files, a service in-process."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from iotmon_alerts.adapters.database import AlertsDatabase
from iotmon_alerts.clock import SimulatedClock
from iotmon_alerts.config import (
    SERVICE_NAME,
    AlertsDatabaseSettings,
    AlertsSettings,
    WebhookSettings,
)
from iotmon_contract import event_topic, service_status_topic, status_topic
from iotmon_registry import RegistrySettings
from iotmon_tools.localstack import MosquittoProcess, ReceivedWebhook
from tests.utils.mqtt_peer import Peer


def database_settings(folder: Path) -> AlertsDatabaseSettings:
    return AlertsDatabaseSettings(url=SecretStr(f"sqlite:///{folder / 'alerts.db'}"))


def make_settings(
    folder: Path, broker: MosquittoProcess, *, instance: str = "t1", **overrides: Any
) -> AlertsSettings:
    rules = folder / "rules"
    rules.mkdir(exist_ok=True)
    webhooks = overrides.pop(
        "webhooks",
        WebhookSettings(backoff_base_s=0.2, backoff_max_s=1.0, poll_interval_s=0.1, timeout_s=2),
    )
    return AlertsSettings(
        instance_id=instance,
        mqtt={"host": broker.host, "port": broker.port, "share_group": None},
        database=database_settings(folder),
        registry=RegistrySettings(url=SecretStr(f"sqlite:///{folder / 'registry.db'}")),
        rules_dir=rules,
        tick_interval_s=0.05,
        actions_interval_s=0.05,
        reload_interval_s=0.2,
        webhooks=webhooks,
        # a free port each: several services (and other tests' services) run side by side
        metrics=overrides.pop("metrics", {"port": 0}),
        **overrides,
    )


def write_rules(settings: AlertsSettings, tenant: str, text: str) -> Path:
    """Written whole at once (a new file renamed over the old), as an editor or a config
    tool does: a running service's watcher never reads a half-written file."""
    path = settings.rules_dir / f"{tenant}.yaml"
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(text)
    os.replace(partial, path)
    return path


def reading(metric: str, value: float, ts: datetime | None = None) -> bytes:
    stamp = (ts or datetime.now(UTC)).isoformat()
    return json.dumps({"metric": metric, "value": value, "ts": stamp}).encode()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)


def open_database(settings: AlertsSettings) -> AlertsDatabase:
    return AlertsDatabase(settings.database).open()


def wait_online(
    peer: Peer,
    settings: AlertsSettings,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = 30.0,
) -> None:
    """Until the service's availability says ``online``.

    The service publishes it on the connection right after its SUBSCRIBE, and the broker
    handles a connection's packets in order: once ``online`` is seen, the service's
    subscriptions (and its persistent session) exist, so nothing published from here on
    is lost. A log line such as "started" comes before the connection is even made.
    """
    topic = service_status_topic(SERVICE_NAME, settings.instance_id)
    peer.subscribe(topic)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"the alert service did not say online on {topic}")
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the alert service exited ({process.returncode})")
        try:
            message = peer.messages.get(timeout=min(left, 0.5))
        except queue.Empty:
            continue
        if message.topic == topic and json.loads(message.payload or b"{}").get("state") == "online":
            return


def service_environment(settings: AlertsSettings, **extra: str) -> dict[str, str]:
    """``settings`` as the IOTMON_ALERTS_* variables of a service process (plus ``extra``)."""
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
        "IOTMON_ALERTS_METRICS__PORT": str(settings.metrics.port),
        **extra,
    }


class ServiceProcess:
    """``iotmon-alerts run`` as a process of its own, so it can be killed for real."""

    def __init__(self, environment: dict[str, str], log: Path) -> None:
        self._env = environment
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
        """SIGKILL: nothing the process held only in memory survives."""
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


class ClockFeeder:
    """Publishes delivered events (the replay's line format) over MQTT when a simulated
    clock reaches each line's ``at``, as the devices' messages would reach the service."""

    def __init__(self, peer: Peer, clock: SimulatedClock, lines: list[dict[str, Any]]) -> None:
        self._peer = peer
        self._clock = clock
        self._lines = sorted(lines, key=lambda line: line["at"])
        self._next = 0
        self.lateness: list[float] = []
        """Simulated seconds each line went out after its ``at``."""

    @property
    def done(self) -> bool:
        return self._next >= len(self._lines)

    def publish_until(self, until: datetime) -> int:
        """Publish every line due before ``until``, each at its time; how many."""
        sent = 0
        while not self.done:
            line = self._lines[self._next]
            due = parse_time(line["at"])
            if due >= until:
                break
            self.sleep_until(due)
            self._publish(line)
            self.lateness.append((self._clock() - due).total_seconds())
            self._next += 1
            sent += 1
        return sent

    def sleep_until(self, moment: datetime) -> None:
        left = self._clock.wall_seconds(moment - self._clock())
        if left > 0:
            time.sleep(left)

    def _publish(self, line: dict[str, Any]) -> None:
        tenant, device = line["tenant"], line["device"]
        if "event" in line:
            topic, body = event_topic(tenant, device), line["event"]
        else:
            topic, body = status_topic(tenant, device), line["status"]
        code = self._peer.publish(topic, json.dumps(body).encode())
        assert code < 128, f"publish to {topic} refused: {code}"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def bus_notifications(received: list[ReceivedWebhook]) -> list[dict[str, Any]]:
    """The bus rules' notifications in webhooks, as the replay writes them (JSON lines)."""
    found: list[dict[str, Any]] = []
    for webhook in received:
        data = webhook.payload["data"]
        if "notice" in data:
            records = [data["notice"]["data"].get("notification")]
        else:
            records = [alert["details"].get("notification") for alert in data["alerts"]]
        found.extend(record for record in records if record is not None)
    return found

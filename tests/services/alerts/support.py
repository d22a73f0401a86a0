"""Alert-service test helpers: settings on temp folders, rule files, a service in-process."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from iotmon_alerts.adapters.database import AlertsDatabase
from iotmon_alerts.config import (
    SERVICE_NAME,
    AlertsDatabaseSettings,
    AlertsSettings,
    WebhookSettings,
)
from iotmon_contract import service_status_topic
from iotmon_registry import RegistrySettings
from iotmon_tools.localstack import MosquittoProcess
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
        **overrides,
    )


def write_rules(settings: AlertsSettings, tenant: str, text: str) -> Path:
    path = settings.rules_dir / f"{tenant}.yaml"
    path.write_text(text)
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


def wait_online(peer: Peer, settings: AlertsSettings, timeout: float = 30.0) -> None:
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
        try:
            message = peer.messages.get(timeout=left)
        except queue.Empty:
            continue
        if message.topic == topic and json.loads(message.payload or b"{}").get("state") == "online":
            return

"""Helpers for ingest tests: contract payloads, a real paho publisher and collector, polling."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from iotmon_ingest import IngestSettings
from iotmon_registry import Registry, RegistrySettings
from iotmon_storage import TimeSeriesStore
from iotmon_storage.influx import InfluxStore, quote_identifier, quote_literal
from iotmon_tools.localstack import MosquittoProcess

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def ts_from_us(microseconds: int) -> datetime:
    """Exact timestamps from integers (float seconds would collide at µs resolution)."""
    return EPOCH + timedelta(microseconds=microseconds)


def now_us() -> int:
    return time.time_ns() // 1000


def single(value: float, ts: datetime, metric: str = "temperature", **extra: Any) -> bytes:
    body = {"metric": metric, "value": value, "ts": ts.isoformat(), **extra}
    return json.dumps(body, separators=(",", ":")).encode()


def batch(readings: Sequence[tuple[str | None, str, float, datetime]]) -> bytes:
    items = []
    for device, metric, value, ts in readings:
        item: dict[str, Any] = {"metric": metric, "value": value, "ts": ts.isoformat()}
        if device is not None:
            item["device"] = device
        items.append(item)
    return json.dumps({"readings": items}, separators=(",", ":")).encode()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def registry_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'registry.db'}"


def register_children(
    settings: RegistrySettings, tenant: str, gateway: str, children: Sequence[str]
) -> None:
    """Make ``gateway`` the registered gateway of ``children`` (as ``iotmon registry import``)."""
    with Registry(settings) as registry:
        registry.import_gateway(tenant, gateway, children)


def ingest_settings(
    broker: MosquittoProcess, influx_url: str, database: str, tmp_path: Path, **overrides: Any
) -> IngestSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "instance_id": unique("t"),
        "mqtt": {"host": broker.host, "port": broker.port, "share_group": unique("g")},
        "store": {"url": influx_url, "database": database},
        "spool_dir": tmp_path / "spool",
        "registry": {"url": registry_url(tmp_path)},
        "flush_interval_s": 0.05,
        "store_retry_min_s": 0.2,
        "store_retry_max_s": 1.0,
        "stats_interval_s": 5.0,
        # A free port each: tests run many ingest services side by side.
        "metrics": {"port": 0},
    }
    values.update(overrides)
    return IngestSettings(**values)


class Publisher:
    """A real paho MQTT 5 client publishing QoS 1, waiting for every PUBACK on ``flush``."""

    def __init__(self, broker: MosquittoProcess, client_id: str | None = None) -> None:
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or unique("pub-"),
            protocol=paho.MQTTv5,
        )
        self._client.max_inflight_messages_set(1000)
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        self._infos: list[paho.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self._infos.append(self._client.publish(topic, payload, qos=qos, retain=retain))

    def flush(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for info in self._infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            assert info.is_published(), "broker did not acknowledge a publish"
        self._infos.clear()

    def close(self) -> None:
        self.flush()
        self._client.disconnect()
        self._client.loop_stop()


class Collector:
    """Subscribes to a filter and keeps every (topic, payload) it sees."""

    def __init__(self, broker: MosquittoProcess, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=unique("col-"), protocol=paho.MQTTv5
        )
        self._client.on_connect = lambda c, *_: c.subscribe(topic_filter, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        assert self._subscribed.wait(10), "collector did not subscribe"

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def payloads(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(payload) for _, payload in self.messages]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def stored_values(store: TimeSeriesStore, tenant: str, metric: str) -> dict[tuple[str, int], float]:
    """Every stored reading of a tenant's metric: (device, ts_ns) → value."""
    assert isinstance(store, InfluxStore)
    statement = (
        f"SELECT value FROM {quote_identifier(metric)} "  # noqa: S608 - InfluxQL, quoted
        f"WHERE tenant = {quote_literal(tenant)} GROUP BY device"
    )
    return {
        (series["tags"]["device"], int(ts)): float(value)
        for series in store.query(statement)
        for ts, value in series["values"]
    }

"""Points a real influxd refuses are dead-lettered one by one; everything else is stored.

InfluxDB refuses points beyond a retention policy (here a 1-hour default policy)
and points whose field type conflicts with what the measurement already holds
(here an integer ``value`` written into ``pressure`` first), and stores the rest
of the write ("partial write").
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from iotmon_contract import dead_letter_topic, status_topic, telemetry_topic
from iotmon_storage import TimeSeriesStore
from iotmon_storage.influx import InfluxStore
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
from tests.services.ingest.conftest import StartIngest
from tests.services.ingest.store_proxy import Mode, StoreProxy
from tests.services.ingest.support import (
    Collector,
    Publisher,
    batch,
    now_us,
    register_children,
    single,
    stored_values,
    ts_from_us,
    unique,
    wait_until,
)

HOUR_US = 3_600_000_000


def prepare_refusals(influxd: InfluxdProcess, store: TimeSeriesStore, database: str) -> int:
    """A 1-hour default retention policy, and an integer ``pressure`` already stored."""
    assert isinstance(store, InfluxStore)
    store.query(
        f'CREATE RETENTION POLICY "hour" ON "{database}" DURATION 1h REPLICATION 1 DEFAULT',
        method="POST",
    )
    before = time.time_ns() - 5 * 10**9
    response = httpx.post(
        f"{influxd.url}/write",
        params={"db": database},
        content=f"pressure,device=other,tenant=elsewhere value=7i {before}",
    )
    assert response.status_code == 204, response.text
    return before


def seen_total(store: TimeSeriesStore, tenant: str) -> int:
    assert isinstance(store, InfluxStore)
    series = store.query(
        f"SELECT sum(\"readings\") FROM _device_seen WHERE tenant = '{tenant}'"  # noqa: S608
    )
    return int(series[0]["values"][0][1]) if series else 0


def letters_by_reason(payloads: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for payload in payloads:
        found.setdefault(payload["reason"], []).append(payload)
    return found


GATEWAY_CHILDREN = ["child-0", "child-1", "child-2"]
"""What publish_mixed's gateway gw-1 speaks for: registered, or its batch is refused whole."""


def publish_mixed(publisher: Publisher, tenant: str, base: int) -> dict[str, Any]:
    """Singles, a gateway batch, statuses and a bad payload; what must be stored or refused."""
    old = base - 2 * HOUR_US
    keep: dict[tuple[str, int], float] = {}
    refused: set[tuple[str, str, int]] = set()
    topic = telemetry_topic(tenant, "env-1")
    for i in range(40):
        recent = i % 4 != 1
        ts = (base if recent else old) + i
        publisher.publish(topic, single(float(i), ts_from_us(ts)))
        if recent:
            keep[("env-1", ts * 1000)] = float(i)
        else:
            refused.add(("env-1", "temperature", ts * 1000))
    gateway = []
    for i in range(300):
        device = f"child-{i % 3}"
        recent = i % 10 != 0
        ts = (base if recent else old) + 1000 + i
        gateway.append((device, "temperature", i * 0.5, ts_from_us(ts)))
        if recent:
            keep[(device, ts * 1000)] = i * 0.5
        else:
            refused.add((device, "temperature", ts * 1000))
    # Type conflict: every pressure reading is refused.
    gateway.append(("child-0", "pressure", 1.5, ts_from_us(base + 5000)))
    refused.add(("child-0", "pressure", (base + 5000) * 1000))
    publisher.publish(telemetry_topic(tenant, "gw-1"), batch(gateway))
    publisher.publish(topic, b"{this is not json")
    publisher.publish(
        status_topic(tenant, "env-1"),
        json.dumps({"state": "online", "ts": ts_from_us(base).isoformat()}).encode(),
    )
    publisher.publish(
        status_topic(tenant, "env-2"),
        json.dumps({"state": "offline", "ts": ts_from_us(old).isoformat()}).encode(),
    )
    publisher.flush()
    return {"keep": keep, "refused": refused, "old_status": ("env-2", old * 1000)}


def check_outcome(
    store: TimeSeriesStore, dead: Collector, tenant: str, expected: dict[str, Any]
) -> None:
    keep, refused = expected["keep"], expected["refused"]
    assert wait_until(lambda: stored_values(store, tenant, "temperature") == keep, 20), (
        len(stored_values(store, tenant, "temperature")),
        len(keep),
    )
    assert stored_values(store, tenant, "pressure") == {}
    # One dead letter per refused point, naming it; plus the bad payload and the old status.
    letters = len(refused) + 2
    assert wait_until(lambda: len(dead.messages) >= letters, 20), len(dead.messages)
    time.sleep(0.3)  # and no more than that
    by_reason = letters_by_reason(dead.payloads())
    assert {reason: len(items) for reason, items in by_reason.items()} == {
        "store_rejected": len(refused) + 1,
        "not_json": 1,
    }
    rejected = by_reason["store_rejected"]
    records = [(p, json.loads(p["payload_excerpt"])) for p in rejected]
    readings = [r for _, r in records if "metric" in r]
    named = {(r["device"], r["metric"], r["ts_ns"]) for r in readings if r["tenant"] == tenant}
    assert named == refused
    for payload in rejected:
        assert payload["service"] == "ingest"
        assert payload["detail"].startswith("the store refused ")
        assert "InfluxDB (400): partial write: " in payload["detail"]
    reasons = {p["detail"].split("partial write: ")[1].split(" dropped=")[0] for p in rejected}
    assert any("beyond retention policy" in r for r in reasons)
    assert any("field type conflict" in r for r in reasons)
    statuses = [r for _, r in records if "state" in r]
    assert [(s["device"], s["state"], s["ts_ns"]) for s in statuses] == [
        (expected["old_status"][0], "offline", expected["old_status"][1])
    ]
    for payload, record in records:
        kind = "telemetry" if "metric" in record else "status"
        assert payload["topic"] == f"iotmon/v1/{tenant}/{record['device']}/{kind}"
        assert f" of {tenant}/{record['device']} at {record['ts']}: InfluxDB" in payload["detail"]
    # The store has the same dead letters as the topic: none parked anywhere.
    assert wait_until(lambda: len(store.dead_letters(limit=10_000)) == letters, 10)
    stored_letters = store.dead_letters(limit=10_000)
    assert sorted(d.detail for d in stored_letters) == sorted(p["detail"] for p in dead.payloads())
    # _device_seen counts what was stored, not what was sent.
    assert seen_total(store, tenant) == len(keep)
    devices = {d.device: d for d in store.devices(tenant)}
    assert devices["env-1"].state is not None
    assert devices["env-1"].state.value == "online"


def test_refused_points_are_dead_lettered_one_by_one_and_the_rest_stored(
    start_ingest: StartIngest,
    fresh_mosquitto: MosquittoProcess,
    influxd: InfluxdProcess,
    store: TimeSeriesStore,
    database: str,
    tmp_path: Path,
) -> None:
    prepare_refusals(influxd, store, database)
    tenant = unique("t")
    service = start_ingest()
    register_children(service.settings.registry, tenant, "gw-1", GATEWAY_CHILDREN)
    dead = Collector(fresh_mosquitto, dead_letter_topic("ingest"))
    publisher = Publisher(fresh_mosquitto)
    expected = publish_mixed(publisher, tenant, now_us() - 60_000_000)
    check_outcome(store, dead, tenant, expected)

    counters = service.counters
    assert counters.refused_readings == len(expected["refused"])
    assert counters.refused_statuses == 1
    assert counters.readings_written == len(expected["keep"])
    assert counters.dead_letters == {"store_rejected": len(expected["refused"]) + 1, "not_json": 1}
    assert counters.statuses_written == 1
    assert counters.unstored_dead_letters == 0
    client = service.client
    assert client is not None
    assert wait_until(lambda: client.stats().acks == 40 + 1 + 1 + 2, 5)
    spool = tmp_path / "spool" / service.settings.client_id
    assert not spool.exists() or not list(spool.rglob("*.json"))
    assert not (spool / "rejected").exists()
    publisher.close()
    dead.close()


def test_a_spooled_batch_the_store_refuses_in_part_on_replay(
    start_ingest: StartIngest,
    fresh_mosquitto: MosquittoProcess,
    influxd: InfluxdProcess,
    store: TimeSeriesStore,
    database: str,
    tmp_path: Path,
) -> None:
    prepare_refusals(influxd, store, database)
    proxy = StoreProxy(influxd.url).start()
    try:
        proxy.set_mode(Mode.FAIL)
        tenant = unique("t")
        service = start_ingest(influx_url=proxy.url)
        register_children(service.settings.registry, tenant, "gw-1", GATEWAY_CHILDREN)
        dead = Collector(fresh_mosquitto, dead_letter_topic("ingest"))
        publisher = Publisher(fresh_mosquitto)
        expected = publish_mixed(publisher, tenant, now_us() - 60_000_000)
        client = service.client
        assert client is not None
        # All spooled and acknowledged while the store answers 503.
        assert wait_until(lambda: client.stats().acks == 44, 15)
        assert service.counters.spooled_readings == len(expected["keep"]) + len(expected["refused"])
        assert len(dead.messages) == 1  # the bad payload only, so far
        proxy.set_mode(Mode.PASS)
        check_outcome(store, dead, tenant, expected)
        assert wait_until(lambda: service.health().spool_batches == 0, 10)
        spool = tmp_path / "spool" / service.settings.client_id
        assert not list(spool.glob("*.batch.json"))
        assert not (spool / "rejected").exists()
        publisher.close()
        dead.close()
    finally:
        proxy.stop()


def test_dead_letters_the_store_refuses_are_counted_and_the_batch_still_stored(
    start_ingest: StartIngest,
    fresh_mosquitto: MosquittoProcess,
    influxd: InfluxdProcess,
    store: TimeSeriesStore,
    database: str,
    tmp_path: Path,
) -> None:
    # A float payload_bytes in _dead_letter first: every dead letter (an integer
    # there) is now a field type conflict.
    response = httpx.post(
        f"{influxd.url}/write",
        params={"db": database},
        content=f"_dead_letter,reason=schema,service=other payload_bytes=1.5 {time.time_ns()}",
    )
    assert response.status_code == 204, response.text
    tenant = unique("t")
    service = start_ingest()
    dead = Collector(fresh_mosquitto, dead_letter_topic("ingest"))
    publisher = Publisher(fresh_mosquitto)
    topic = telemetry_topic(tenant, "env-1")
    base = now_us() - 60_000_000
    expected = {("env-1", (base + i) * 1000): float(i) for i in range(20)}
    for i in range(20):
        publisher.publish(topic, single(float(i), ts_from_us(base + i)))
        if i in (5, 15):
            publisher.publish(topic, b"{this is not json")
    publisher.close()
    assert wait_until(lambda: stored_values(store, tenant, "temperature") == expected, 15)
    assert wait_until(lambda: service.counters.unstored_dead_letters == 2, 10)
    assert [p["reason"] for p in dead.payloads()] == ["not_json", "not_json"]
    assert service.counters.dead_letters == {"not_json": 2}
    assert isinstance(store, InfluxStore)
    series = store.query('SELECT count("payload_bytes") FROM "_dead_letter"')
    assert series[0]["values"][0][1] == 1  # only the conflicting point written first
    client = service.client
    assert client is not None
    assert wait_until(lambda: client.stats().acks == 22, 5)
    assert service.health().spool_batches == 0
    dead.close()

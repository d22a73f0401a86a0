"""IngestService against a real mosquitto and influxd, fed by real paho publishers."""

from __future__ import annotations

import functools
import getpass
import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iotmon_contract import (
    MAX_PAYLOAD_BYTES,
    DeadLetterReason,
    DeviceState,
    DeviceStatus,
    dead_letter_topic,
    event_topic,
    service_status_filter,
    service_status_topic,
    status_topic,
    telemetry_topic,
)
from iotmon_ingest import IngestService, IngestSettings, writer
from iotmon_ingest.config import DEFAULT_SHARE_GROUP
from iotmon_storage import StoreSettings, TimeSeriesStore, open_store
from iotmon_storage.influx import InfluxStore
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess, find_program, free_port
from iotmon_tools.localstack.processes import ManagedProcess, port_open
from tests.services.ingest.conftest import StartIngest
from tests.services.ingest.support import (
    Collector,
    Publisher,
    batch,
    now_us,
    register_children,
    registry_url,
    single,
    stored_values,
    ts_from_us,
    unique,
    wait_until,
)


def values_by_time(store: TimeSeriesStore, tenant: str, metric: str) -> dict[int, float]:
    return {ts: value for (_, ts), value in stored_values(store, tenant, metric).items()}


def test_bad_payloads_are_dead_lettered_and_the_good_ones_stored(
    start_ingest: StartIngest,
    fresh_mosquitto: MosquittoProcess,
    store: TimeSeriesStore,
    tmp_path: Path,
) -> None:
    tenant = unique("t")
    registry = tmp_path / "devices.yaml"
    registry.write_text(f"tenants:\n  {tenant}: ['env-*']\n")
    service = start_ingest(device_registry=registry)
    dead = Collector(fresh_mosquitto, dead_letter_topic("ingest"))
    publisher = Publisher(fresh_mosquitto)
    topic = telemetry_topic(tenant, "env-1")
    base = now_us() - 60_000_000
    bad = {
        DeadLetterReason.NOT_JSON: (topic, b"{this is not json"),
        DeadLetterReason.SCHEMA: (topic, b'{"metric":"Temp!","value":1,"ts":"2026-01-01T00:00Z"}'),
        DeadLetterReason.OVERSIZED: (topic, b'{"pad":"' + b"x" * MAX_PAYLOAD_BYTES + b'"}'),
        DeadLetterReason.UNKNOWN_DEVICE: (
            telemetry_topic(tenant, "intruder-1"),
            single(1.0, ts_from_us(base)),
        ),
        DeadLetterReason.BAD_TIMESTAMP: (topic, single(1.0, ts_from_us(0))),
        # Matches the telemetry filter, breaks the contract (uppercase device id).
        DeadLetterReason.BAD_TOPIC: (
            f"iotmon/v1/{tenant}/Env-UPPER/telemetry",
            single(1.0, ts_from_us(base)),
        ),
    }
    expected: dict[int, float] = {}
    index = 0
    for bad_topic, bad_payload in bad.values():
        for _ in range(5):
            ts = base + index
            expected[ts * 1000] = index * 0.5
            publisher.publish(topic, single(index * 0.5, ts_from_us(ts)))
            index += 1
        publisher.publish(bad_topic, bad_payload)
    publisher.flush()

    assert wait_until(
        lambda: len(values_by_time(store, tenant, "temperature")) == len(expected), 20
    )
    assert values_by_time(store, tenant, "temperature") == expected
    assert wait_until(lambda: len(dead.messages) == len(bad), 10)
    # The writer counts a batch once it is written and acknowledged: wait for that too.
    assert wait_until(lambda: service.counters.readings_written == len(expected), 10)
    counters = service.counters
    assert counters.dead_letters == {reason.value: 1 for reason in bad}
    assert {p["reason"] for p in dead.payloads()} == {reason.value for reason in bad}
    assert all(p["service"] == "ingest" for p in dead.payloads())
    oversized = next(p for p in dead.payloads() if p["reason"] == "oversized")
    assert oversized["payload_bytes"] > MAX_PAYLOAD_BYTES
    assert len(oversized["payload_excerpt"]) <= 1024
    assert {d.reason for d in store.dead_letters(limit=100)} == set(bad)

    # Still running: a later good message is stored too.
    later = base + 10_000
    publisher.publish(topic, single(42.0, ts_from_us(later)))
    publisher.close()
    assert wait_until(lambda: later * 1000 in values_by_time(store, tenant, "temperature"), 10)
    dead.close()


def test_a_gateway_batch_is_stored_in_full_and_statuses_are_stored(
    start_ingest: StartIngest, fresh_mosquitto: MosquittoProcess, store: TimeSeriesStore
) -> None:
    tenant = unique("t")
    service = start_ingest()
    register_children(service.settings.registry, tenant, "gw-1", [f"child-{i}" for i in range(7)])
    publisher = Publisher(fresh_mosquitto)
    base = now_us() - 120_000_000
    readings = [(f"child-{i % 7}", "power_w", i * 1.25, ts_from_us(base + i)) for i in range(2000)]
    publisher.publish(telemetry_topic(tenant, "gw-1"), batch(readings))
    publisher.publish(
        status_topic(tenant, "gw-1"),
        json.dumps({"state": "online", "ts": ts_from_us(base).isoformat()}).encode(),
        retain=True,
    )
    publisher.close()
    assert wait_until(lambda: store.count_readings(tenant, "power_w") == 2000, 15)
    values = values_by_time(store, tenant, "power_w")
    assert values == {(base + i) * 1000: i * 1.25 for i in range(2000)}
    assert wait_until(lambda: service.counters.statuses_written == 1, 10)
    devices = {d.device: d for d in store.devices(tenant)}
    assert devices["gw-1"].state is not None
    assert devices["gw-1"].state.value == "online"
    assert set(devices) == {"gw-1", *(f"child-{i}" for i in range(7))}


def test_readings_split_over_several_writes_are_all_counted_as_seen(
    start_ingest: StartIngest,
    fresh_mosquitto: MosquittoProcess,
    store: TimeSeriesStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A batch larger than one InfluxDB request is written in chunks; each chunk's
    # _device_seen point must add to the count, not overwrite the previous one.
    monkeypatch.setattr(writer, "_WRITE_CHUNK", 100)
    tenant = unique("t")
    service = start_ingest()
    register_children(service.settings.registry, tenant, "gw-1", ["child-1"])
    publisher = Publisher(fresh_mosquitto)
    base = now_us() - 120_000_000
    readings = [("child-1", "power_w", float(i), ts_from_us(base + i)) for i in range(350)]
    publisher.publish(telemetry_topic(tenant, "gw-1"), batch(readings))
    publisher.close()
    assert wait_until(lambda: store.count_readings(tenant, "power_w") == 350, 15)
    assert isinstance(store, InfluxStore)
    series = store.query(
        f"SELECT sum(\"readings\") FROM _device_seen WHERE tenant = '{tenant}'"  # noqa: S608
    )
    assert series[0]["values"][0][1] == 350


def test_store_outage_spools_then_replays_without_loss(
    start_ingest: StartIngest, fresh_mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    own_influxd = InfluxdProcess(tmp_path / "influxd")
    own_influxd.start()
    store = open_store(StoreSettings(url=own_influxd.url, database="outage"))
    try:
        tenant = unique("t")
        service = start_ingest(store={"url": own_influxd.url, "database": "outage"})
        publisher = Publisher(fresh_mosquitto)
        topic = telemetry_topic(tenant, "env-1")
        base = now_us() - 60_000_000
        expected = {(base + i) * 1000: float(i) for i in range(1500)}

        for i in range(500):
            publisher.publish(topic, single(float(i), ts_from_us(base + i)))
        publisher.flush()
        assert wait_until(lambda: service.counters.readings_written == 500, 15)

        own_influxd.stop()
        for i in range(500, 1500):
            publisher.publish(topic, single(float(i), ts_from_us(base + i)))
        publisher.flush()
        # Acknowledged because spooled: the broker holds nothing for us any more.
        client = service.client
        assert client is not None
        assert wait_until(lambda: client.stats().acks == 1500, 15)
        assert service.counters.spooled_readings == 1000
        spool = tmp_path / "spool" / service.settings.client_id
        assert any(spool.glob("*.batch.json"))

        own_influxd.start()
        assert wait_until(lambda: service.counters.replayed_readings == 1000, 20)
        assert not any(spool.glob("*.batch.json"))
        assert values_by_time(store, tenant, "temperature") == expected
        publisher.close()
    finally:
        store.close()
        own_influxd.stop()


@pytest.mark.parametrize(
    ("protocol", "fast_path"), [("3.1.1", True), ("5", False)], ids=["mqtt311", "plain-paho"]
)
def test_mqtt_311_and_the_plain_paho_path_store_everything(
    start_ingest: StartIngest,
    fresh_mosquitto: MosquittoProcess,
    store: TimeSeriesStore,
    protocol: str,
    fast_path: bool,
) -> None:
    tenant = unique("t")
    service = start_ingest(
        mqtt={
            "host": fresh_mosquitto.host,
            "port": fresh_mosquitto.port,
            "protocol": protocol,
            "fast_path": fast_path,
        }
    )
    assert service.client is not None
    assert service.client.fast_path is fast_path
    publisher = Publisher(fresh_mosquitto)
    base = now_us() - 60_000_000
    expected = {}
    for i in range(300):
        expected[(base + i) * 1000] = float(i)
        # Every tenth at QoS 0: nothing to acknowledge, still stored.
        publisher.publish(
            telemetry_topic(tenant, "env-1"),
            single(float(i), ts_from_us(base + i)),
            qos=i % 10 and 1,
        )
    publisher.close()
    assert wait_until(lambda: values_by_time(store, tenant, "temperature") == expected, 15)
    client = service.client
    assert client is not None
    assert wait_until(lambda: client.stats().acks == 270, 5)


@pytest.mark.parametrize(
    ("before", "after"),
    [(DEFAULT_SHARE_GROUP, None), (None, "g-after")],
    ids=["shared-to-plain", "plain-to-shared"],
)
def test_a_resumed_session_that_changes_subscription_mode_gets_each_message_once(
    start_ingest: StartIngest,
    fresh_mosquitto: MosquittoProcess,
    store: TimeSeriesStore,
    before: str | None,
    after: str | None,
) -> None:
    instance = unique("i")
    broker = {"host": fresh_mosquitto.host, "port": fresh_mosquitto.port}
    start_ingest(instance_id=instance, mqtt={**broker, "share_group": before}).stop()
    # Same client id: the broker resumes the session, which still holds the old filter.
    service = start_ingest(instance_id=instance, mqtt={**broker, "share_group": after})
    tenant = unique("t")
    publisher = Publisher(fresh_mosquitto)
    base = now_us() - 60_000_000
    for i in range(200):
        publisher.publish(telemetry_topic(tenant, "env-1"), single(float(i), ts_from_us(base + i)))
    publisher.close()
    assert wait_until(lambda: store.count_readings(tenant, "temperature") == 200, 15)
    # A copy through the old subscription would arrive with or right after its twin.
    time.sleep(0.5)
    assert service.counters.received == 200


def test_refused_credentials_stop_the_service_instead_of_retrying(
    tmp_path: Path, influxd: InfluxdProcess, database: str
) -> None:
    program = find_program("mosquitto")
    passwd = find_program("mosquitto_passwd")
    assert program is not None
    assert passwd is not None
    passwords = tmp_path / "passwords"
    subprocess.run([passwd, "-b", "-c", str(passwords), "ingest", "right"], check=True)
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {passwords}\n"
    )
    broker = ManagedProcess("mosquitto", [program, "-c", str(config)], tmp_path / "m.log")
    broker.start(lambda: port_open("127.0.0.1", port))
    try:
        settings = IngestSettings(
            mqtt={"port": port, "username": "ingest", "password": "wrong", "client_id": "auth"},
            store={"url": influxd.url, "database": database},
            spool_dir=tmp_path / "spool",
            registry={"url": registry_url(tmp_path)},
            metrics={"port": 0},
        )
        service = IngestService(settings)
        service.start()
        assert service.stop_event.wait(10)
        assert service.failure is not None
        assert "Not authorized" in service.failure
        service.stop()
    finally:
        broker.stop()


def test_no_store_and_no_spool_holds_messages_unacknowledged_until_stopped(
    start_ingest: StartIngest,
    fresh_mosquitto: MosquittoProcess,
    store: TimeSeriesStore,
    influxd: InfluxdProcess,
    database: str,
    tmp_path: Path,
) -> None:
    tenant = unique("t")
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("the spool cannot be created here")
    dead_store = {"url": f"http://127.0.0.1:{free_port()}", "database": database}
    mqtt = {"host": fresh_mosquitto.host, "port": fresh_mosquitto.port, "client_id": "no-disk"}
    failing = start_ingest(store=dead_store, spool_dir=blocked, mqtt=mqtt)
    client = failing.client
    assert client is not None
    publisher = Publisher(fresh_mosquitto)
    base = now_us() - 60_000_000
    for i in range(10):
        publisher.publish(telemetry_topic(tenant, "env-1"), single(float(i), ts_from_us(base + i)))
    publisher.flush()

    # Neither store nor spool: ingest holds the batch, pauses intake and stays up.
    assert wait_until(lambda: failing.health().intake_paused, 10), failing.health()
    health = failing.health()
    assert health.held_messages == 10
    assert any(r.startswith("spool not writable: intake paused") for r in health.reasons)
    assert any(r.startswith("store unavailable") for r in health.reasons), health.reasons
    assert not failing.stop_event.is_set()
    assert client.stats().received == 10
    assert client.stats().acks == 0
    failing.stop()
    assert client.stats().acks == 0
    assert failing.failure is None

    # Nothing was acknowledged, so the broker hands all of it to the next run.
    start_ingest(mqtt=mqtt)
    publisher.close()
    assert wait_until(lambda: len(values_by_time(store, tenant, "temperature")) == 10, 15)


def test_retained_telemetry_is_dead_lettered_and_never_stored_again(
    start_ingest: StartIngest, fresh_mosquitto: MosquittoProcess, store: TimeSeriesStore
) -> None:
    """MQTT 5: a live retained reading is refused, and no restart hands it over again."""
    tenant = unique("t")
    mqtt = {"host": fresh_mosquitto.host, "port": fresh_mosquitto.port, "share_group": "retain"}
    first = start_ingest(instance_id="retain-0", mqtt=mqtt)
    publisher = Publisher(fresh_mosquitto)
    topic = telemetry_topic(tenant, "env-1")
    base = now_us() - 60_000_000
    publisher.publish(topic, single(1.0, ts_from_us(base)), retain=True)
    publisher.publish(topic, single(2.0, ts_from_us(base + 1)))
    publisher.flush()
    assert wait_until(lambda: first.counters.readings_written == 1, 10)
    assert wait_until(lambda: first.counters.dead_letters == {"retained": 1}, 10)
    assert wait_until(lambda: len(store.dead_letters(limit=10)) == 1, 10)
    assert store.dead_letters(limit=10)[0].reason is DeadLetterReason.RETAINED
    first.stop()

    # The same session resumed, and a replica with a session of its own: the broker
    # still holds the retained reading but sends it to neither (retain handling 2).
    resumed = start_ingest(instance_id="retain-0", mqtt=mqtt)
    fresh = start_ingest(instance_id="retain-1", mqtt=mqtt)
    publisher.publish(topic, single(3.0, ts_from_us(base + 2)))
    publisher.close()
    assert wait_until(
        lambda: resumed.counters.readings_written + fresh.counters.readings_written == 1, 10
    )
    assert values_by_time(store, tenant, "temperature") == {
        (base + 1) * 1000: 2.0,
        (base + 2) * 1000: 3.0,
    }
    assert resumed.counters.dead_letters == {}
    assert fresh.counters.dead_letters == {}


def test_retained_telemetry_sent_on_subscribe_over_mqtt_311_is_dead_lettered(
    start_ingest: StartIngest, fresh_mosquitto: MosquittoProcess, store: TimeSeriesStore
) -> None:
    """MQTT 3.1.1 has no retain handling: the broker resends the reading on every
    subscribe, with the retain flag, and every time it is refused, never stored."""
    tenant = unique("t")
    publisher = Publisher(fresh_mosquitto)
    base = now_us() - 60_000_000
    publisher.publish(telemetry_topic(tenant, "env-1"), single(1.0, ts_from_us(base)), retain=True)
    publisher.close()
    mqtt = {"host": fresh_mosquitto.host, "port": fresh_mosquitto.port, "protocol": "3.1.1"}

    def refused_once(service: IngestService) -> bool:
        return service.counters.dead_letters == {"retained": 1}

    for run in range(2):
        service = start_ingest(instance_id="retain-311", mqtt=mqtt)
        assert wait_until(functools.partial(refused_once, service), 10), run
        service.stop()
    assert values_by_time(store, tenant, "temperature") == {}
    assert [d.reason for d in store.dead_letters(limit=10)] == [DeadLetterReason.RETAINED] * 2


def test_ingest_announces_itself_and_its_will_marks_it_offline(
    start_ingest: StartIngest, fresh_mosquitto: MosquittoProcess
) -> None:
    """Retained on iotmon/v1/_sys/status/ingest/<instance>: online, offline on a clean stop."""
    instance = unique("i")
    watcher = Collector(fresh_mosquitto, service_status_filter("ingest"))
    try:
        service = start_ingest(instance_id=instance)
        topic = service_status_topic("ingest", instance)
        assert wait_until(lambda: [t for t, _ in watcher.messages] == [topic], 10)
        online = DeviceStatus.model_validate_json(watcher.messages[0][1])
        assert online.state is DeviceState.ONLINE
        assert online.agent is not None
        assert online.agent.startswith("iotmon-ingest/")
        service.stop()
        assert wait_until(lambda: len(watcher.messages) == 2, 10)
        offline = DeviceStatus.model_validate_json(watcher.messages[1][1])
        assert offline.state is DeviceState.OFFLINE
        assert offline.ts is not None
    finally:
        watcher.close()


def test_device_events_are_stored_exactly_once_and_bad_ones_dead_lettered(
    start_ingest: StartIngest, fresh_mosquitto: MosquittoProcess, store: TimeSeriesStore
) -> None:
    tenant = unique("t")
    service = start_ingest()
    dead = Collector(fresh_mosquitto, dead_letter_topic("ingest"))
    publisher = Publisher(fresh_mosquitto)
    topic = event_topic(tenant, "door-1")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)

    def tag_read(seq: int) -> bytes:
        ts = (start + timedelta(seconds=seq // 4)).isoformat().replace("+00:00", "Z")
        body = {"type": "tag_read", "ts": ts, "seq": seq, "tag": f"T{seq}", "rssi": -50.0}
        return json.dumps(body).encode()

    for seq in range(20):
        publisher.publish(topic, tag_read(seq))
    for seq in range(5):  # an edge agent replaying after a crash: the same events again
        publisher.publish(topic, tag_read(seq))
    publisher.publish(topic, b'{"type":"teleport","ts":"2026-11-25T10:00:00Z","seq":99}')
    publisher.publish(topic, tag_read(50), retain=True)
    publisher.flush()
    end = start + timedelta(minutes=1)
    assert wait_until(lambda: len(store.events(tenant, "door-1", start, end)) == 20, 15)
    stored = store.events(tenant, "door-1", start, end)
    assert [e.seq for e in stored] == list(range(20))
    assert stored[5].data == {"tag": "T5", "rssi": -50.0}
    assert wait_until(lambda: len(dead.messages) == 2, 10)
    assert sorted(p["reason"] for p in dead.payloads()) == ["retained", "unknown_event_type"]
    assert wait_until(lambda: service.counters.events_written == 25, 10)
    publisher.close()
    dead.close()

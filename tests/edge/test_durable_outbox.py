"""The durable outbox against a real mosquitto: disk first, deleted on PUBACK, live-first drain,
latest retained state, the byte bound with its counter and warning event, numbering that
survives a restart."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from iotmon_contract import (
    FaultEvent,
    SingleReading,
    event_filter,
    parse_event,
    parse_telemetry,
    status_filter,
    telemetry_filter,
    telemetry_topic,
)
from iotmon_devices import FaultProfile
from iotmon_edge.agent import build_agent, simulated_agent_config
from iotmon_edge.config import EdgeMqttSettings, HealthConfig, QueueConfig
from iotmon_edge.durable_outbox import DurableOutbox, QueuePolicy
from iotmon_edge.health import Metric
from iotmon_runtime.mqtt import MqttClient, MqttSettings, OutgoingMessage
from iotmon_tools.localstack import MosquittoProcess
from tests.edge.recorder import Received, recording
from tests.services.ingest.support import unique, wait_until

TIMEOUT = 30.0
NO_FAULTS = FaultProfile(dropout_rate=0, spike_rate=0, stuck_rate=0)


def _policy(tmp_path: Path, **overrides: object) -> QueuePolicy:
    values: dict[str, object] = {
        "path": tmp_path / "queue.db",
        "max_bytes": 16 * 1024 * 1024,
        "max_age_s": 3600.0,
        "drain_rate": 0.0,
    }
    values.update(overrides)
    return QueuePolicy(**values)  # type: ignore[arg-type]


@contextmanager
def _outbox(broker: MosquittoProcess, policy: QueuePolicy) -> Iterator[DurableOutbox]:
    client = MqttClient(
        MqttSettings(port=broker.port, reconnect_min_s=1, reconnect_max_s=1),
        client_id=unique("outbox-"),
    )
    outbox = DurableOutbox(client, policy)
    outbox.start()
    client.start()
    try:
        yield outbox
    finally:
        outbox.stop()
        client.stop()


def _reading(tenant: str, device: str, seq: int, tag: str = "") -> OutgoingMessage:
    payload = json.dumps(
        {"metric": "n", "value": seq, "ts": "2026-11-25T10:00:00Z", "seq": seq, "unit": tag or "x"}
    )
    return OutgoingMessage(telemetry_topic(tenant, device), payload.encode(), 1, False)


def _seqs(messages: list[Received], device: str, tag: str | None = None) -> list[int]:
    out = []
    for message in messages:
        if f"/{device}/telemetry" not in message.topic:
            continue
        body = json.loads(message.payload)
        if tag is None or body["unit"] == tag:
            out.append(body["seq"])
    return out


def _rows_on_disk(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM queue").fetchone()[0])
    finally:
        db.close()


def test_messages_are_on_disk_while_the_broker_is_away_and_deleted_once_it_acknowledged(
    fresh_mosquitto: MosquittoProcess, tenant: str, tmp_path: Path
) -> None:
    broker = fresh_mosquitto
    policy = _policy(tmp_path)
    with recording(broker.host, broker.port, telemetry_filter(tenant), persistent=True) as seen:
        broker.stop()
        with _outbox(broker, policy) as outbox:
            assert outbox.put_many([_reading(tenant, "d1", n) for n in range(50)]) == 50
            assert outbox.flush(TIMEOUT)  # no broker: flushed means stored
            assert _rows_on_disk(policy.path) == 50
            assert outbox.stats().depth == 50
            broker.start()
            assert wait_until(lambda: outbox.stats().depth == 0, TIMEOUT), outbox.stats()
            assert wait_until(lambda: _rows_on_disk(policy.path) == 0, TIMEOUT)
            stats = outbox.stats()
            assert (stats.delivered, stats.dropped, stats.bytes) == (50, 0, 0)
        assert seen.wait_for(lambda messages: len(messages) >= 50, TIMEOUT)
        assert _seqs(seen.messages(), "d1") == list(range(50))


def test_a_sent_message_stays_on_disk_until_the_broker_acknowledges_it(
    fresh_mosquitto: MosquittoProcess, tenant: str, tmp_path: Path
) -> None:
    broker = fresh_mosquitto
    policy = _policy(tmp_path)
    with _outbox(broker, policy) as outbox:
        assert wait_until(lambda: outbox.stats().delivered == 0 and _connected(outbox), TIMEOUT)
        pid = broker.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the connection stays up; no PUBACK comes back
        try:
            outbox.put_many([_reading(tenant, "d1", n) for n in range(100)])
            assert wait_until(lambda: outbox.stats().in_flight == 100, TIMEOUT)
            time.sleep(0.5)  # several rounds of deleting what was acknowledged
            assert _rows_on_disk(policy.path) == 100
            assert outbox.stats().delivered == 0
        finally:
            os.kill(pid, signal.SIGCONT)
        assert wait_until(lambda: _rows_on_disk(policy.path) == 0, TIMEOUT)
        assert outbox.stats().delivered == 100


def _connected(outbox: DurableOutbox) -> bool:
    return outbox._client.connected


def test_the_backlog_drains_in_order_at_its_rate_while_live_data_goes_first(
    fresh_mosquitto: MosquittoProcess, tenant: str, tmp_path: Path
) -> None:
    broker = fresh_mosquitto
    backlog, rate = 600, 200.0
    devices = ["d0", "d1", "d2"]
    with recording(broker.host, broker.port, telemetry_filter(tenant), persistent=True) as seen:
        broker.stop()
        with _outbox(broker, _policy(tmp_path, drain_rate=rate)) as outbox:
            seq = dict.fromkeys(devices, 0)
            for n in range(backlog):
                device = devices[n % 3]
                outbox.put_many([_reading(tenant, device, seq[device], "old")])
                seq[device] += 1
            assert outbox.flush(TIMEOUT)
            broker.start()
            # Once the drain has begun the backlog's end is fixed: what is put now is live.
            assert seen.wait_for(lambda m: len(m) >= 1, TIMEOUT)
            started = time.monotonic()
            live_sent = 0
            while outbox.stats().depth > 0 and time.monotonic() - started < TIMEOUT:
                for device in devices:
                    outbox.put_many([_reading(tenant, device, seq[device], "live")])
                    seq[device] += 1
                    live_sent += 1
                time.sleep(0.05)
            drained_s = time.monotonic() - started
        assert seen.wait_for(lambda m: len(m) >= backlog + live_sent, TIMEOUT)
    messages = seen.messages()
    for device in devices:
        old, live = _seqs(messages, device, "old"), _seqs(messages, device, "live")
        assert old == list(range(backlog // 3)), device  # oldest first, nothing missing
        assert live == list(range(backlog // 3, seq[device])), device
    # Live first: live readings arrived while the backlog was still draining.
    units = [json.loads(m.payload)["unit"] for m in messages]
    assert units.index("live") < len(units) - 1 - units[::-1].index("old")
    # The drain rate holds (a lower bound on the time: a loaded machine only adds to it).
    assert drained_s >= 0.8 * (backlog - 1) / rate, drained_s


def test_only_the_latest_retained_state_of_a_topic_is_sent(
    fresh_mosquitto: MosquittoProcess, tenant: str, tmp_path: Path
) -> None:
    broker = fresh_mosquitto
    topic_a, topic_b = f"iotmon/v1/{tenant}/a/status", f"iotmon/v1/{tenant}/b/status"
    with recording(broker.host, broker.port, status_filter(tenant), persistent=True) as seen:
        broker.stop()
        with _outbox(broker, _policy(tmp_path)) as outbox:
            outbox.put(topic_a, b'{"state":"online"}', 1, True)
            outbox.put(topic_b, b'{"state":"online"}', 1, True)
            outbox.put(topic_a, b'{"state":"offline"}', 1, True)
            assert outbox.flush(TIMEOUT)
            broker.start()
            assert seen.wait_for(lambda m: len(m) >= 2, TIMEOUT)
            assert outbox.flush(TIMEOUT)
        time.sleep(0.5)  # a stale state sent late would show up here
        assert sorted((m.topic, m.payload) for m in seen.messages()) == [
            (topic_a, b'{"state":"offline"}'),
            (topic_b, b'{"state":"online"}'),
        ]
    with recording(broker.host, broker.port, topic_a) as late:
        assert late.wait_for(lambda m: len(m) == 1, TIMEOUT)
        assert late.messages()[0].retain


def test_over_the_byte_bound_the_oldest_are_dropped_counted_and_warned_about(
    fresh_mosquitto: MosquittoProcess, tenant: str, tmp_path: Path
) -> None:
    broker = fresh_mosquitto
    queue = QueueConfig(path=tmp_path / "queue.db", max_bytes=64 * 1024, drain_rate=0)
    config = simulated_agent_config(
        tenant,
        10,
        1.0,
        seed=3,
        agent_id="gw-1",
        faults=NO_FAULTS,
        health=HealthConfig(interval_s=1, thermal_zone=None),
        queue=queue,
    )
    settings = EdgeMqttSettings(port=broker.port, reconnect_min_s=1, reconnect_max_s=1)
    agent = build_agent(config, settings)
    filters = (telemetry_filter(tenant), event_filter(tenant))
    with recording(broker.host, broker.port, *filters, persistent=True) as seen:
        broker.stop()
        # Cycles are driven from here (the agent is not started): the outbox is.
        agent.outbox.start()
        try:
            t0 = datetime(2026, 11, 25, 10, tzinfo=UTC)
            # 30 readings of ~125 bytes a cycle: the bound holds about 16 cycles; the
            # warning, put the cycle after the first drop, is still queued after 24.
            for cycle in range(24):
                agent.publish_cycle(t0 + timedelta(seconds=cycle))
                assert agent.outbox.flush(TIMEOUT)
                stats = agent.outbox.stats()
                assert stats.bytes <= queue.max_bytes
            assert stats.dropped > 0
            assert stats.dropped + stats.depth == agent.stats().messages
            assert agent.stats().events == 1  # once a minute at most
            time.sleep(1.0)  # health readings are due again
            agent.publish_cycle(t0 + timedelta(seconds=24))
            assert agent.outbox.flush(TIMEOUT)
            queued = agent.outbox.stats().depth
            broker.start()
            agent.client.start()
            assert wait_until(lambda: agent.outbox.stats().depth == 0, TIMEOUT)
            final = agent.outbox.stats()
        finally:
            agent.outbox.stop()
            agent.client.stop()
        assert seen.wait_for(lambda m: len(m) >= queued, TIMEOUT)
    messages = seen.messages()
    (warning,) = [parse_event(m.payload) for m in messages if m.topic.endswith("/event")]
    assert isinstance(warning, FaultEvent)
    assert (warning.component, warning.code, warning.severity.value) == (
        "queue",
        "messages_dropped",
        "warning",
    )
    assert "oldest queued message(s) to stay within max_bytes 65536" in (warning.detail or "")
    dropped_totals = [
        parse_telemetry(m.payload)
        for m in messages
        if m.topic == telemetry_topic(tenant, "gw-1")
        and json.loads(m.payload)["metric"] == Metric.QUEUE_DROPPED
    ]
    assert dropped_totals
    last = dropped_totals[-1]
    assert isinstance(last, SingleReading)
    assert stats.dropped <= last.value <= final.dropped
    # The oldest went: each sensor's numbering starts late (a visible gap) and has no hole
    # after that.
    by_device: dict[str, list[int]] = defaultdict(list)
    for message in messages:
        if not message.topic.endswith("/telemetry"):
            continue
        reading = parse_telemetry(message.payload)
        device = message.topic.split("/")[3]
        if device != "gw-1" and isinstance(reading, SingleReading) and reading.seq is not None:
            by_device[device].append(reading.seq)
    assert len(by_device) == 10
    for seqs in by_device.values():
        assert seqs[0] > 0
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_numbering_goes_on_across_a_restart(
    mosquitto: MosquittoProcess, tenant: str, tmp_path: Path
) -> None:
    queue = QueueConfig(path=tmp_path / "queue.db")
    config = simulated_agent_config(
        tenant, 2, 0.2, seed=5, agent_id="gw-1", faults=NO_FAULTS, queue=queue
    )
    settings = EdgeMqttSettings(port=mosquitto.port)
    with recording(mosquitto.host, mosquitto.port, telemetry_filter(tenant)) as seen:
        for _run in range(2):
            agent = build_agent(config, settings)
            agent.start()
            assert wait_until(lambda a=agent: a.stats().cycles >= 3, TIMEOUT)  # type: ignore[misc]
            agent.stop()
        total = 2 * 3  # at least: two runs of three cycles of three metrics per sensor
        assert seen.wait_for(lambda m: len(_seqs(m, "env-0001")) >= 3 * total, TIMEOUT)
    seqs = _seqs(seen.messages(), "env-0001")
    assert seqs == list(range(len(seqs)))

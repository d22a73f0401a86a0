"""The agent against a real mosquitto: contract payloads, availability, reconnects."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from iotmon_contract import (
    DeviceState,
    ReadingBatch,
    SingleReading,
    TelemetryValidator,
    parse_telemetry,
    status_filter,
    status_topic,
    telemetry_filter,
    telemetry_topic,
)
from iotmon_devices import FaultProfile
from iotmon_edge import EdgeMqttSettings
from iotmon_edge.agent import (
    EdgeAgent,
    build_agent,
    build_simulated_agent,
    default_client_id,
    simulated_agent_config,
)
from iotmon_edge.config import PublishMode
from iotmon_runtime.mqtt import MqttProtocol
from iotmon_tools.localstack import MosquittoProcess
from tests.edge.recorder import Received, Recorder, recording

NO_FAULTS = FaultProfile(dropout_rate=0, spike_rate=0, stuck_rate=0)


def _agent(
    broker: MosquittoProcess,
    tenant: str,
    *,
    devices: int = 5,
    interval: float = 0.2,
    mode: PublishMode = PublishMode.SINGLE,
    protocol: MqttProtocol = MqttProtocol.V5,
) -> EdgeAgent:
    config = simulated_agent_config(
        tenant, devices, interval, mode, seed=1, agent_id="gw-1", faults=NO_FAULTS
    )
    options = EdgeMqttSettings(
        host=broker.host,
        port=broker.port,
        client_id=default_client_id(config),
        protocol=protocol,
        reconnect_min_s=1,
        reconnect_max_s=1,
    )
    return build_agent(config, options)


@contextmanager
def _running(agent: EdgeAgent) -> Iterator[EdgeAgent]:
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def _telemetry(recorder: Recorder) -> list[Received]:
    return recorder.messages(lambda m: m.topic.endswith("/telemetry"))


def _ts(message: Received) -> datetime:
    reading = parse_telemetry(message.payload)
    assert isinstance(reading, SingleReading)
    return reading.ts


def _state(recorder: Recorder, tenant: str, device: str) -> DeviceState | None:
    statuses = recorder.statuses(status_topic(tenant, device))
    return statuses[-1].state if statuses else None


def test_single_mode_publishes_valid_readings_per_device(
    mosquitto: MosquittoProcess, tenant: str
) -> None:
    validator = TelemetryValidator()
    with recording(mosquitto.host, mosquitto.port, telemetry_filter(tenant)) as recorder:
        with _running(_agent(mosquitto, tenant, devices=5)):
            # Two full cycles: 5 devices x 3 metrics x 2.
            assert recorder.wait_for(lambda messages: len(messages) >= 30, timeout=10)
        for message in _telemetry(recorder):
            assert message.qos == 1
            assert not message.retain
            (reading,) = validator.validate(message.topic, message.payload)
            assert message.topic == telemetry_topic(tenant, reading.device)
            assert isinstance(parse_telemetry(message.payload), SingleReading)
        devices = {validator.validate(m.topic, m.payload)[0].device for m in _telemetry(recorder)}
        # The sensors, and the agent's own health readings.
        assert devices == {f"env-{n:04d}" for n in range(1, 6)} | {"gw-1"}
        seqs = [
            parse_telemetry(m.payload).seq
            for m in _telemetry(recorder)
            if m.topic == telemetry_topic(tenant, "env-0001")
        ]
        # Per device: three metrics a cycle, numbered without gaps.
        assert seqs == list(range(len(seqs)))


def test_batch_mode_publishes_reading_batches_on_the_agent_topic(
    mosquitto: MosquittoProcess, tenant: str
) -> None:
    validator = TelemetryValidator()
    with recording(mosquitto.host, mosquitto.port, telemetry_filter(tenant)) as recorder:
        with _running(_agent(mosquitto, tenant, devices=40, mode=PublishMode.BATCH)):
            assert recorder.wait_for(lambda messages: len(messages) >= 2, timeout=10)
        for message in _telemetry(recorder):
            assert message.topic == telemetry_topic(tenant, "gw-1")
            batch = parse_telemetry(message.payload)
            assert isinstance(batch, ReadingBatch)
            assert all(reading.device is not None for reading in batch.readings)
            readings = [
                r for r in validator.validate(message.topic, message.payload) if r.device != "gw-1"
            ]
            assert len(readings) == 120  # 40 devices x 3 metrics, one batch per cycle
            assert {r.device for r in readings} == {f"env-{n:04d}" for n in range(1, 41)}


def test_agent_and_devices_announce_online_and_go_offline_on_clean_stop(
    mosquitto: MosquittoProcess, tenant: str
) -> None:
    devices = ["gw-1", "env-0001", "env-0002", "env-0003"]
    with recording(mosquitto.host, mosquitto.port, status_filter(tenant)) as recorder:
        agent = _agent(mosquitto, tenant, devices=3, interval=5)
        with _running(agent):
            assert recorder.wait_for(
                lambda _: all(_state(recorder, tenant, d) == DeviceState.ONLINE for d in devices),
                timeout=10,
            )
        assert recorder.wait_for(
            lambda _: all(_state(recorder, tenant, d) == DeviceState.OFFLINE for d in devices),
            timeout=10,
        )
        offline = recorder.statuses(status_topic(tenant, "env-0001"))[-1]
        assert offline.ts is not None
        assert offline.agent is not None
        assert offline.agent.startswith("iotmon-edge")
    # Retained: a subscriber arriving later still learns the state.
    with recording(mosquitto.host, mosquitto.port, status_topic(tenant, "env-0002")) as late:
        assert late.wait_for(lambda messages: len(messages) == 1, timeout=5)
        (message,) = late.messages()
        assert message.retain
        assert json.loads(message.payload)["state"] == "offline"


def test_mqtt_311_works_for_brokers_without_mqtt5(mosquitto: MosquittoProcess, tenant: str) -> None:
    validator = TelemetryValidator()
    with recording(
        mosquitto.host, mosquitto.port, telemetry_filter(tenant), status_filter(tenant)
    ) as recorder:
        agent = _agent(mosquitto, tenant, devices=2, protocol=MqttProtocol.V311)
        with _running(agent):
            # Readings taken before the connection go out first, the announcement after them.
            assert recorder.wait_for(
                lambda _: (
                    len(_telemetry(recorder)) >= 6
                    and _state(recorder, tenant, "gw-1") == DeviceState.ONLINE
                ),
                timeout=10,
            )
        for message in _telemetry(recorder):
            validator.validate(message.topic, message.payload)


def test_build_simulated_agent_runs_a_fleet_in_process(
    mosquitto: MosquittoProcess, tenant: str
) -> None:
    agent = build_simulated_agent(
        tenant, 200, 0.5, "batch", mosquitto.host, mosquitto.port, 7, "3.1.1"
    )
    with recording(mosquitto.host, mosquitto.port, telemetry_filter(tenant)) as recorder:
        with _running(agent):
            assert recorder.wait_for(lambda messages: len(messages) >= 1, timeout=10)
        stats = agent.stats()
        assert stats.cycles >= 1
        assert stats.dropped == 0
        assert agent.client.stats().completed == agent.client.stats().accepted


def test_publishing_resumes_after_the_broker_restarts(
    fresh_mosquitto: MosquittoProcess, tenant: str
) -> None:
    broker = fresh_mosquitto
    with recording(
        broker.host, broker.port, telemetry_filter(tenant), status_filter(tenant)
    ) as recorder:
        agent = _agent(broker, tenant, devices=2, interval=0.2)
        with _running(agent):
            assert recorder.wait_for(lambda _: len(_telemetry(recorder)) >= 6, timeout=10)
            broker.stop()
            restarted_at = datetime.now(UTC)
            broker.start()

            def resumed(_: list[Received]) -> bool:
                fresh = [m for m in _telemetry(recorder) if _ts(m) > restarted_at]
                return len(fresh) >= 6

            assert recorder.wait_for(resumed, timeout=20)
            assert agent.client.stats().connects == 2
            # The agent re-announced itself on the new connection.
            assert recorder.wait_for(
                lambda _: any(
                    s.ts is not None and s.ts > restarted_at and s.state == DeviceState.ONLINE
                    for s in recorder.statuses(status_topic(tenant, "gw-1"))
                ),
                timeout=10,
            )
        assert recorder.subscriptions == 2


def test_readings_taken_before_the_broker_is_up_are_delivered_once_it_is(
    fresh_mosquitto: MosquittoProcess, tenant: str
) -> None:
    broker = fresh_mosquitto
    broker.stop()
    agent = _agent(broker, tenant, devices=2, interval=0.2)
    with _running(agent):
        time.sleep(0.7)
        held = agent.client.stats().held
        assert held >= 6  # at least two cycles of 2 devices x 3 metrics, waiting
        broker.start()
        assert agent.client.wait_connected(10)
        assert agent.client.flush(10)
        stats = agent.client.stats()
        assert stats.held == 0
        assert stats.refused == 0
        # Everything held went out and was acknowledged, plus the announcements.
        assert stats.completed >= held + 3

"""Thousands of devices from one process: one publish cycle of a 5,000-sensor fleet.

The agent's cycle is called directly with a recording outbox (no broker), and every
message it puts is checked the way ingest checks it. Speed is the benchmarks' business,
so there is no timing assertion here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from iotmon_contract import (
    MAX_BATCH_READINGS,
    MAX_PAYLOAD_BYTES,
    MessageKind,
    ReadingBatch,
    TelemetryValidator,
    parse_telemetry,
    telemetry_topic,
    topic_rule,
)
from iotmon_contract.validation import to_ns
from iotmon_devices import FaultProfile, default_registry
from iotmon_edge import AgentConfig, EdgeAgent, PublishMode
from iotmon_edge.agent import default_client_id, simulated_agent_config
from iotmon_edge.config import HealthConfig
from iotmon_edge.outbox import OutboxStats
from iotmon_runtime.mqtt import MqttClient, MqttSettings, OutgoingMessage

FLEET = 5000
METRICS = {"temperature", "humidity", "co2"}
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
NO_FAULTS = FaultProfile(dropout_rate=0, spike_rate=0, stuck_rate=0)
TENANT = "acme"
AGENT_ID = "gw-1"


@dataclass(frozen=True)
class Put:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class RecordingOutbox:
    """An Outbox that keeps what it is given, for exact assertions."""

    def __init__(self) -> None:
        self.messages: list[Put] = []

    def start(self) -> None:
        """Nothing to open."""

    def stop(self) -> None:
        """Nothing to close."""

    def put(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        self.messages.append(Put(topic, payload, qos, retain))
        return True

    def put_many(
        self, messages: Sequence[OutgoingMessage], sequences: Mapping[str, int] | None = None
    ) -> int:
        return sum(self.put(m.topic, m.payload, m.qos, m.retain) for m in messages)

    def sequences(self) -> dict[str, int]:
        return {}

    def flush(self, timeout: float) -> bool:
        return True

    def alive(self, within_s: float) -> bool:
        return True

    def stats(self) -> OutboxStats:
        return OutboxStats(
            durable=False, depth=0, bytes=0, oldest_age_s=None, in_flight=0, delivered=0,
            rejected=0, refused=0, dropped=0, dropped_bytes=0, errors=0,
        )  # fmt: skip


def fleet_agent(config: AgentConfig, outbox: RecordingOutbox) -> EdgeAgent:
    registry = default_registry()
    # Never started: publish_cycle only reads the drivers and puts into the outbox.
    client = MqttClient(MqttSettings(port=1), client_id=default_client_id(config))
    return EdgeAgent(
        config,
        drivers=[registry.create(driver) for driver in config.drivers],
        client=client,
        outbox=outbox,
        clock=lambda: NOW,
    )


def fleet_config(mode: PublishMode, batch_max_readings: int | None = None) -> AgentConfig:
    # The agent's own health readings are tested in tests/edge; here only the fleet counts.
    config = simulated_agent_config(
        TENANT,
        FLEET,
        10.0,
        mode,
        seed=7,
        agent_id=AGENT_ID,
        faults=NO_FAULTS,
        health=HealthConfig(enabled=False),
    )
    if batch_max_readings is None:
        return config
    return AgentConfig.model_validate(
        {**config.model_dump(), "batch_max_readings": batch_max_readings}
    )


def validator(device_ids: set[str]) -> TelemetryValidator:
    """What ingest runs, knowing exactly the fleet and its agent."""
    known = {*device_ids, AGENT_ID}
    return TelemetryValidator(
        known_device=lambda tenant, device: tenant == TENANT and device in known,
        clock=lambda: to_ns(NOW),
    )


def test_one_cycle_of_5000_sensors_one_message_per_reading() -> None:
    outbox = RecordingOutbox()
    agent = fleet_agent(fleet_config(PublishMode.SINGLE), outbox)
    devices = set(agent.device_ids)
    assert len(devices) == FLEET

    put = agent.publish_cycle(NOW)

    assert put == len(outbox.messages) == FLEET * len(METRICS)
    stats = agent.stats()
    assert (stats.readings, stats.invalid, stats.dropped) == (FLEET * len(METRICS), 0, 0)
    rule = topic_rule(MessageKind.TELEMETRY)
    check = validator(devices)
    seen: list[tuple[str, str]] = []
    for message in outbox.messages:
        assert (message.qos, message.retain) == (rule.qos, rule.retain)
        [reading] = check.validate(message.topic, message.payload)
        assert message.topic == telemetry_topic(TENANT, reading.device)
        assert reading.ts_ns == to_ns(NOW)
        seen.append((reading.device, reading.metric))
    assert len(seen) == len(set(seen))
    assert set(seen) == {(device, metric) for device in devices for metric in METRICS}


@pytest.mark.parametrize("batch_max_readings", [None, MAX_BATCH_READINGS])
def test_one_cycle_of_5000_sensors_in_batches_within_the_contract_limits(
    batch_max_readings: int | None,
) -> None:
    config = fleet_config(PublishMode.BATCH, batch_max_readings)
    outbox = RecordingOutbox()
    agent = fleet_agent(config, outbox)
    devices = set(agent.device_ids)

    put = agent.publish_cycle(NOW)

    assert put == len(outbox.messages)
    assert agent.stats().invalid == 0
    check = validator(devices)
    seen: list[tuple[str, str]] = []
    for message in outbox.messages:
        assert message.topic == telemetry_topic(TENANT, AGENT_ID)
        assert len(message.payload) <= MAX_PAYLOAD_BYTES
        batch = parse_telemetry(message.payload)
        assert isinstance(batch, ReadingBatch)
        assert len(batch.readings) <= min(config.batch_max_readings, MAX_BATCH_READINGS)
        readings = check.validate(message.topic, message.payload)
        seen.extend((reading.device, reading.metric) for reading in readings)
    assert len(seen) == len(set(seen)) == FLEET * len(METRICS)
    assert set(seen) == {(device, metric) for device in devices for metric in METRICS}
    # Batches carry their own sequence, one per message.
    seqs = [parse_telemetry(m.payload).seq for m in outbox.messages]
    assert seqs == list(range(len(outbox.messages)))

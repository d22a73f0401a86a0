"""Zigbee2MQTT played back on a real local mosquitto; the agent bridges it to another real
mosquitto; an independent subscriber there checks what the platform receives."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest

from iotmon_contract import (
    ActionEvent,
    DeviceState,
    DeviceStatus,
    EventValidator,
    ReadingBatch,
    SingleReading,
    TelemetryValidator,
    event_filter,
    parse_telemetry,
    status_filter,
    status_topic,
    telemetry_filter,
    telemetry_topic,
)
from iotmon_contract.validation import to_ns
from iotmon_devices import DeviceReading
from iotmon_edge import AgentConfig, EdgeAgent, EdgeMqttSettings, PublishMode, build_agent
from iotmon_edge.config import HealthConfig
from iotmon_edge.zigbee2mqtt import ActionRecord, Zigbee2MqttConfig, Zigbee2MqttMapper
from iotmon_runtime.mqtt import MqttSettings
from iotmon_tools.localstack import MosquittoProcess
from tests.edge.recorder import Received, Recorder, recording
from tests.edge.zigbee.fixtures import GENERATIONS, Fixture, Message, load
from tests.edge.zigbee.replay import playback

AGENT = "gw-zigbee"
SCENARIOS = ("startup", "homeassistant", "state_before_devices", "noise")


class FixtureClock:
    """The agent's "now" on the fixture's timeline: its start plus real elapsed time, so
    last_seen values (fixed in the fixtures) are plausible and within the contract's window."""

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._t0 = time.monotonic()

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._t0)

    def ns(self) -> int:
        return to_ns(self())


@contextmanager
def _agent(
    upstream: MosquittoProcess,
    local: MosquittoProcess,
    tenant: str,
    clock: FixtureClock,
    mode: PublishMode = PublishMode.SINGLE,
) -> Iterator[EdgeAgent]:
    config = AgentConfig(
        tenant=tenant,
        agent_id=AGENT,
        publish_interval_s=0.2,
        mode=mode,
        zigbee2mqtt=Zigbee2MqttConfig(),
        # The bridge's messages only: the agent's own health readings are tested elsewhere.
        health=HealthConfig(enabled=False),
    )
    agent = build_agent(
        config,
        EdgeMqttSettings(
            host=upstream.host, port=upstream.port, reconnect_min_s=1, reconnect_max_s=1
        ),
        zigbee2mqtt=MqttSettings(
            host=local.host, port=local.port, reconnect_min_s=1, reconnect_max_s=1
        ),
        clock=clock,
    )
    agent.start()
    try:
        bridge = agent.zigbee2mqtt
        assert bridge is not None
        assert bridge.client.wait_subscribed(10)
        yield agent
    finally:
        agent.stop()


def _expected(
    messages: Sequence[Message],
) -> tuple[Counter[tuple[object, ...]], list[ActionRecord]]:
    """What the mapper makes of the messages, replayed directly (no broker)."""
    mapper = Zigbee2MqttMapper(Zigbee2MqttConfig())
    readings: Counter[tuple[object, ...]] = Counter()
    actions: list[ActionRecord] = []
    for message in messages:
        for output in mapper.handle(message.topic, message.payload, message.received):
            if isinstance(output, DeviceReading):
                readings[
                    (output.device, output.metric, output.value, output.unit, to_ns(output.ts))
                ] += 1
            elif isinstance(output, ActionRecord):
                actions.append(output)
    return readings, actions


def _recorded(recorder: Recorder, kind: str) -> list[Received]:
    return recorder.messages(lambda m: m.topic.endswith(f"/{kind}"))


def _played(fixture: Fixture) -> tuple[list[Message], list[Message]]:
    """Zigbee2MQTT's retained messages exist before the agent starts; the rest come live."""
    messages = fixture.scenario(*SCENARIOS)
    return [m for m in messages if m.retain], [m for m in messages if not m.retain]


@pytest.mark.parametrize("generation", GENERATIONS)
def test_replayed_zigbee2mqtt_reaches_the_platform_as_contract_messages(
    generation: str, mosquitto: MosquittoProcess, fresh_mosquitto: MosquittoProcess, tenant: str
) -> None:
    fixture = load(generation)
    retained, live = _played(fixture)
    readings, actions = _expected(retained + live)
    assert sum(readings.values()) > 200
    assert len(actions) >= 4
    clock = FixtureClock(fixture.start)
    filters = (telemetry_filter(tenant), event_filter(tenant), status_filter(tenant))
    with (
        playback(fresh_mosquitto.host, fresh_mosquitto.port) as zigbee2mqtt,
        recording(mosquitto.host, mosquitto.port, *filters) as recorder,
    ):
        zigbee2mqtt.play(retained)
        with _agent(mosquitto, fresh_mosquitto, tenant, clock) as agent:
            zigbee2mqtt.play(live)
            assert recorder.wait_for(
                lambda _: (
                    len(_recorded(recorder, "telemetry")) >= sum(readings.values())
                    and len(_recorded(recorder, "event")) >= len(actions)
                ),
                timeout=30,
            ), (
                len(_recorded(recorder, "telemetry")),
                agent.zigbee2mqtt and agent.zigbee2mqtt.stats(),
            )
            time.sleep(0.5)  # nothing more should come
            bridge = agent.zigbee2mqtt
            assert bridge is not None
            stats = bridge.stats()
        # Every Zigbee device the agent served goes offline when it stops.
        zigbee = {status_topic(tenant, e.device_id) for e in fixture.devices.values()}

        def all_offline(messages: list[Received]) -> bool:
            last = {m.topic: m for m in messages if m.topic in zigbee}
            return len(last) == len(zigbee) and all(
                _state(m) is DeviceState.OFFLINE for m in last.values()
            )

        assert recorder.wait_for(all_offline, timeout=10)

    assert (stats.bad_payloads, stats.unmapped, stats.pending) == (0, 0, 0)
    telemetry = TelemetryValidator(clock=clock.ns)
    got: Counter[tuple[object, ...]] = Counter()
    seqs: dict[str, list[int]] = {}
    for message in _recorded(recorder, "telemetry"):
        assert (message.qos, message.retain) == (1, False)
        (reading,) = telemetry.validate(message.topic, message.payload)
        assert message.topic == telemetry_topic(tenant, reading.device)
        got[(reading.device, reading.metric, reading.value, reading.unit, reading.ts_ns)] += 1
        single = parse_telemetry(message.payload)
        assert isinstance(single, SingleReading)
        assert single.seq is not None
        seqs.setdefault(reading.device, []).append(single.seq)
    assert got == readings
    for device, numbers in seqs.items():
        assert numbers == list(range(len(numbers))), device

    events = EventValidator(clock=clock.ns)
    received = [events.validate(m.topic, m.payload) for m in _recorded(recorder, "event")]
    pressed = [
        (e.device, e.event.action, e.ts_ns) for e in received if isinstance(e.event, ActionEvent)
    ]
    assert pressed == [(a.device, a.action, to_ns(a.ts)) for a in actions]
    by_device: dict[str, list[int]] = {}
    for event in received:
        assert event.type == "action"
        by_device.setdefault(event.device, []).append(event.seq)
    assert all(s == list(range(len(s))) for s in by_device.values())

    # Independent of the mapper: values straight from Zigbee2MQTT's payloads.
    *_, contact = fixture.state_messages("contact_aqara", "startup")
    device = fixture.device("contact_aqara").device_id
    contact_ts = to_ns(datetime.fromisoformat(contact.document()["last_seen"]))
    assert got[(device, "contact", float(contact.document()["contact"]), None, contact_ts)] == 1
    if generation == "z2m2":
        *_, weather = fixture.state_messages("climate_yandex", "startup")
        device = fixture.device("climate_yandex").device_id
        hpa = [k for k in got if k[0] == device and k[1] == "pressure"]
        assert {(k[2], k[3]) for k in hpa} == {(weather.document()["pressure"] * 10, "hPa")}


def _state(message: Received) -> DeviceState:
    return DeviceStatus.model_validate_json(message.payload).state


def test_batch_mode_carries_the_zigbee_devices_as_children(
    mosquitto: MosquittoProcess, fresh_mosquitto: MosquittoProcess, tenant: str
) -> None:
    fixture = load("z2m2")
    retained, live = _played(fixture)
    readings, _ = _expected(retained + live)
    clock = FixtureClock(fixture.start)
    with (
        playback(fresh_mosquitto.host, fresh_mosquitto.port) as zigbee2mqtt,
        recording(mosquitto.host, mosquitto.port, telemetry_filter(tenant)) as recorder,
    ):
        zigbee2mqtt.play(retained)
        with _agent(mosquitto, fresh_mosquitto, tenant, clock, PublishMode.BATCH):
            zigbee2mqtt.play(live)

            def complete(messages: list[Received]) -> bool:
                batches = [parse_telemetry(m.payload) for m in messages]
                count = sum(len(b.readings) for b in batches if isinstance(b, ReadingBatch))
                return count >= sum(readings.values())

            assert recorder.wait_for(complete, timeout=30)
    validator = TelemetryValidator(clock=clock.ns)
    got: Counter[tuple[object, ...]] = Counter()
    for message in recorder.messages():
        assert message.topic == telemetry_topic(tenant, AGENT)
        assert isinstance(parse_telemetry(message.payload), ReadingBatch)
        for r in validator.validate(message.topic, message.payload):
            got[(r.device, r.metric, r.value, r.unit, r.ts_ns)] += 1
    assert got == readings


def test_upgrade_from_1x_to_2x_through_the_broker(
    mosquitto: MosquittoProcess, fresh_mosquitto: MosquittoProcess, tenant: str
) -> None:
    """Zigbee2MQTT 1.42 runs, then 2.x takes over the same network and broker: retained
    bridge/devices and availability replaced, models renamed, same IEEE addresses."""
    old, new = load("z2m1"), load("z2m2")
    clock = FixtureClock(old.start)
    with (
        playback(fresh_mosquitto.host, fresh_mosquitto.port) as zigbee2mqtt,
        recording(
            mosquitto.host, mosquitto.port, telemetry_filter(tenant), status_filter(tenant)
        ) as recorder,
        _agent(mosquitto, fresh_mosquitto, tenant, clock) as agent,
    ):
        zigbee2mqtt.play(old.scenarios["startup"])
        first = len(old.devices) - 1  # all but the device that joins later
        assert recorder.wait_for(
            lambda ms: len({m.topic for m in ms if m.topic.endswith("/telemetry")}) >= first - 1,
            timeout=20,
        )
        before = {m.topic for m in _recorded(recorder, "telemetry")}
        count = len(recorder.messages())
        zigbee2mqtt.play(new.scenarios["startup"])
        assert recorder.wait_for(
            lambda ms: before <= {m.topic for m in ms[count:] if m.topic.endswith("/telemetry")},
            timeout=20,
        )
        bridge = agent.zigbee2mqtt
        assert bridge is not None
        assert recorder.wait_for(lambda _: bridge.stats().model_changes == 2, timeout=10)
        during = [
            (m.topic, _state(m))
            for m in recorder.messages()[count:]
            if m.topic.endswith("/status") and "/zb-" in m.topic
        ]
    # The only status news in the upgrade: the device new to 2.x's network came online.
    assert during == [
        (status_topic(tenant, new.device("climate_yandex").device_id), DeviceState.ONLINE)
    ]


def _poll(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_bridge_rides_out_a_local_broker_restart(
    mosquitto: MosquittoProcess, fresh_mosquitto: MosquittoProcess, tenant: str
) -> None:
    """The local broker restarts mid-stream: the bridge reconnects, is handed the retained
    bridge/devices and availability again (no status flaps) and maps what follows."""
    fixture = load("z2m2")
    retained, live = _played(fixture)
    half = len(live) // 2
    readings, _ = _expected(retained + live)
    clock = FixtureClock(fixture.start)
    filters = (telemetry_filter(tenant), status_filter(tenant))
    with recording(mosquitto.host, mosquitto.port, *filters) as recorder:
        with playback(fresh_mosquitto.host, fresh_mosquitto.port) as zigbee2mqtt:
            zigbee2mqtt.play(retained)
        with _agent(mosquitto, fresh_mosquitto, tenant, clock) as agent:
            bridge = agent.zigbee2mqtt
            assert bridge is not None
            with playback(fresh_mosquitto.host, fresh_mosquitto.port) as zigbee2mqtt:
                zigbee2mqtt.play(live[:half])
            # State is QoS 0, as Zigbee2MQTT sends it: what the broker holds when it
            # stops is lost, so the restart waits until the bridge has had all of it.
            assert _poll(lambda: bridge.stats().messages >= len(retained) + half, 10)
            assert recorder.wait_for(
                lambda _: len({m.topic for m in _recorded(recorder, "status")}) >= 20, timeout=10
            )
            before = _recorded(recorder, "status")
            fresh_mosquitto.stop()
            assert _poll(lambda: not bridge.client.connected, 10)
            fresh_mosquitto.start()
            assert _poll(lambda: bridge.client.connected, 15)
            assert bridge.client.wait_subscribed(10)
            with playback(fresh_mosquitto.host, fresh_mosquitto.port) as zigbee2mqtt:
                zigbee2mqtt.play(live[half:])
            assert recorder.wait_for(
                lambda _: len(_recorded(recorder, "telemetry")) >= sum(readings.values()),
                timeout=30,
            )
            time.sleep(0.5)
            after = _recorded(recorder, "status")[len(before) :]
            # Nothing flapped: the only news is a device first heard after the restart.
            assert [m.topic for m in after] == [
                status_topic(tenant, fixture.device("climate_sonoff").device_id)
            ]
            stats = bridge.stats()
    assert (stats.bad_payloads, stats.unmapped) == (0, 0)
    # The retained bridge/devices and availability came again with the new connection.
    assert stats.messages > len(retained) * 2 + len(live) - 5
    validator = TelemetryValidator(clock=clock.ns)
    got: Counter[tuple[object, ...]] = Counter()
    for message in _recorded(recorder, "telemetry"):
        for r in validator.validate(message.topic, message.payload):
            got[(r.device, r.metric, r.value, r.unit, r.ts_ns)] += 1
    assert got == readings

"""Driver events through the agent to a real mosquitto: faults, recovery, tag reads.

The drivers run against their twins (a BME280 behind its SMBus calls, a door reader
on a pty); the broker and the subscriber are real.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from iotmon_contract import (
    DeviceState,
    FaultEvent,
    TagReadEvent,
    event_filter,
    event_topic,
    parse_event,
    status_filter,
    status_topic,
)
from iotmon_devices import Driver, DriverRegistry, RetryPolicy
from iotmon_devices.drivers.bme280 import Bme280Driver
from iotmon_devices.drivers.bme280_config import Bme280Config
from iotmon_devices.drivers.serial_config import DoorTagReaderConfig
from iotmon_devices.drivers.tag_readers import DoorTagReaderDriver
from iotmon_devices.simulators.bme280_twin import Bme280Twin
from iotmon_devices.simulators.serial_ports import PtyPort
from iotmon_devices.simulators.serial_twins import TagReaderTwin
from iotmon_devices.supervision import SupervisedDriver
from iotmon_edge import AgentConfig, EdgeMqttSettings
from iotmon_edge.agent import build_agent, default_client_id
from iotmon_tools.localstack import MosquittoProcess
from tests.edge.recorder import Received, Recorder, recording

TAG = "E2801160600002084A3C1F2B"
RETRY = RetryPolicy(initial_s=0.2, max_s=0.4)


def _events(recorder: Recorder, device: str, tenant: str) -> list[Received]:
    return recorder.messages(lambda m: m.topic == event_topic(tenant, device))


def test_faults_tag_reads_and_availability_reach_the_broker(
    mosquitto: MosquittoProcess, tenant: str, tmp_path: Path
) -> None:
    sensor = Bme280Twin()
    sensor.unplugged = True  # not there when the agent starts
    registry = DriverRegistry()

    def bme280(config: Bme280Config) -> Driver:
        inner = Bme280Driver(config, bus_factory=lambda _bus: sensor)
        return SupervisedDriver(inner, device=config.device_id, component="bme280", retry=RETRY)

    registry.register(Bme280Config, bme280)
    registry.register(DoorTagReaderConfig, DoorTagReaderDriver)
    port = PtyPort(tmp_path / "usb-door")
    config = AgentConfig(
        tenant=tenant,
        agent_id="bus-12",
        publish_interval_s=0.1,
        drivers=[
            Bme280Config(device_id="bus-12-climate", retry=RETRY),
            DoorTagReaderConfig(device_id="bus-12-door", port=port.path, retry=RETRY),
        ],
    )
    settings = EdgeMqttSettings(
        host=mosquitto.host, port=mosquitto.port, client_id=default_client_id(config)
    )
    with (
        TagReaderTwin(port) as reader,
        recording(
            mosquitto.host, mosquitto.port, event_filter(tenant), status_filter(tenant)
        ) as rec,
    ):

        def climate_events() -> list[Received]:
            return _events(rec, "bus-12-climate", tenant)

        agent = build_agent(config, settings, registry=registry)
        agent.start()
        try:
            assert rec.wait_for(lambda _: len(climate_events()) >= 1, 10)
            sensor.unplugged = False  # plugged in: the next retry finds it
            assert rec.wait_for(lambda _: len(climate_events()) >= 2, 10)
            time.sleep(0.3)  # a tag reader line needs the reader's heartbeat first
            reader.passage(TAG, -63.0, "out")
            assert rec.wait_for(lambda _: len(_events(rec, "bus-12-door", tenant)) >= 1, 10)
            assert agent.stats().events >= 3
        finally:
            agent.stop()

    fault, cleared = (parse_event(m.payload) for m in climate_events()[:2])
    assert isinstance(fault, FaultEvent)
    assert isinstance(cleared, FaultEvent)
    assert (fault.code, fault.component, fault.cleared, fault.seq) == (
        "unplugged",
        "bme280",
        False,
        0,
    )
    assert (cleared.code, cleared.cleared, cleared.seq) == ("unplugged", True, 1)
    assert all(not m.retain and m.qos == 1 for m in climate_events())

    [read] = [parse_event(m.payload) for m in _events(rec, "bus-12-door", tenant)]
    assert isinstance(read, TagReadEvent)
    assert (read.tag, read.rssi, read.direction, read.seq) == (TAG, -63.0, "out", 0)

    # The sensor's availability followed its fault: offline, then online again.
    states = [
        json.loads(m.payload)["state"]
        for m in rec.messages(lambda m: m.topic == status_topic(tenant, "bus-12-climate"))
    ]
    assert DeviceState.OFFLINE.value in states
    offline_at = states.index(DeviceState.OFFLINE.value)
    assert DeviceState.ONLINE.value in states[offline_at:]

"""The bridge against a real mosquitto and a real registry: a subscriber sees the retained
discovery configs Home Assistant would read (checked against its documented schema), the
states and the availability they point at; removing a device clears its entities, also
while the bridge was away."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iotmon_contract import service_status_topic, status_topic, telemetry_topic
from iotmon_homeassistant import HomeAssistantBridge, Settings
from iotmon_registry import Registry, RegistrySettings
from iotmon_tools.localstack import MosquittoProcess
from tests.services.homeassistant.ha_schema import check_sensor_config, render_lookup
from tests.services.ingest.support import Publisher, batch, single, unique, wait_until
from tests.utils.mqtt_peer import Peer, Received
from tests.utils.prometheus import scrape

NOW = datetime.now(UTC).replace(microsecond=0)
ONLINE = b'{"state":"online","agent":"iotmon-edge/test"}'


def retained(broker: MosquittoProcess, topic_filter: str) -> dict[str, bytes]:
    """What a new subscriber (Home Assistant starting) gets: every retained message under
    the filter. A marker published after subscribing arrives after all of them."""
    peer = Peer(broker.port, None)
    assert not peer.connect().is_failure
    marker = f"test-sync/{uuid.uuid4().hex}"
    try:
        peer.subscribe(topic_filter)
        peer.subscribe(marker)
        peer.publish(marker, b"x")
        found: dict[str, bytes] = {}
        while True:
            message: Received = peer.messages.get(timeout=10)
            if message.topic == marker:
                return found
            assert message.retained, f"{message.topic} was not retained"
            found[message.topic] = message.payload
    finally:
        peer.close()


@pytest.fixture
def registry_settings(tmp_path: Path) -> RegistrySettings:
    return RegistrySettings(url=f"sqlite:///{tmp_path / 'registry.db'}")


@pytest.fixture
def tenant(registry_settings: RegistrySettings) -> str:
    """gw-1 speaks for env-1; sensor-1 stands alone; ghost is not registered."""
    name = unique("t")
    with Registry(registry_settings) as registry:
        registry.add_site(name, "kitchen")
        registry.add_device(name, "gw-1", site="kitchen")
        registry.add_device(name, "env-1", gateway="gw-1", name="Fridge")
        registry.add_device(name, "sensor-1")
    return name


@pytest.fixture
def settings(
    fresh_mosquitto: MosquittoProcess, registry_settings: RegistrySettings, tenant: str
) -> Settings:
    """On a broker of the test's own: the tests leave retained statuses behind, which
    would reach every later ingest test's status subscription on a shared broker."""
    mosquitto = fresh_mosquitto
    return Settings(
        environment="test",
        instance_id=unique("b"),
        mqtt={"host": mosquitto.host, "port": mosquitto.port},
        registry={
            "url": registry_settings.url,
            "refresh_interval_s": 0.2,
        },
        discovery_prefix=f"ha-{uuid.uuid4().hex[:8]}",
        tenant=tenant,
        metrics={"port": 0},
    )


@pytest.fixture
def bridges(settings: Settings) -> Iterator[list[HomeAssistantBridge]]:
    started: list[HomeAssistantBridge] = []
    yield started
    for bridge in started:
        bridge.stop()


def start(settings: Settings, started: list[HomeAssistantBridge]) -> HomeAssistantBridge:
    bridge = HomeAssistantBridge(settings)
    bridge.start()
    started.append(bridge)
    assert bridge.wait_ready(10)
    return bridge


def settle(bridge: HomeAssistantBridge) -> None:
    """Counted is not yet on the broker: wait until every publish is acknowledged."""
    client = bridge.client
    assert client is not None
    assert client.flush(10), "the broker did not acknowledge the bridge's publishes"


def configs_and_states(broker: MosquittoProcess, prefix: str) -> tuple[dict, dict]:  # type: ignore[type-arg]
    found = retained(broker, f"{prefix}/#")
    configs = {
        t: check_sensor_config(t, p, prefix) for t, p in found.items() if t.endswith("/config")
    }
    states = {t: p for t, p in found.items() if t.endswith("/state")}
    return configs, states


def by_unique_id(configs: dict) -> dict:  # type: ignore[type-arg]
    return {c["unique_id"]: c for c in configs.values()}


def test_devices_appear_with_states_and_availability_and_leave_with_the_registry(
    fresh_mosquitto: MosquittoProcess,
    settings: Settings,
    registry_settings: RegistrySettings,
    tenant: str,
    bridges: list[HomeAssistantBridge],
) -> None:
    mosquitto = fresh_mosquitto
    bridge = start(settings, bridges)
    prefix = settings.discovery_prefix
    publisher = Publisher(mosquitto)
    for device in ("gw-1", "env-1"):
        publisher.publish(status_topic(tenant, device), ONLINE, retain=True)
    older, newer = NOW - timedelta(seconds=20), NOW - timedelta(seconds=10)
    publisher.publish(
        telemetry_topic(tenant, "gw-1"),
        batch(
            [
                ("env-1", "temperature", 4.0, older),
                ("env-1", "temperature", 5.5, newer),
                ("env-1", "humidity", 61.0, newer),
                (None, "agent_queue_depth", 3.0, newer),
            ]
        ),
    )
    publisher.publish(telemetry_topic(tenant, "sensor-1"), single(812.0, newer, "co2", unit="ppm"))
    publisher.publish(telemetry_topic(tenant, "ghost"), single(1.0, newer))
    publisher.publish(telemetry_topic(tenant, "sensor-1"), b"{not json")
    publisher.flush()
    assert wait_until(lambda: bridge.snapshot().states_published == 4, 10), bridge.snapshot()
    settle(bridge)

    configs, states = configs_and_states(mosquitto, prefix)
    entities = by_unique_id(configs)
    assert set(entities) == {
        f"iotmon/{tenant}/env-1/temperature",
        f"iotmon/{tenant}/env-1/humidity",
        f"iotmon/{tenant}/gw-1/agent_queue_depth",
        f"iotmon/{tenant}/sensor-1/co2",
    }
    fridge = entities[f"iotmon/{tenant}/env-1/temperature"]
    assert fridge["device"]["name"] == "Fridge"
    assert fridge["device"]["via_device"] == f"iotmon/{tenant}/gw-1"
    assert fridge["device"]["suggested_area"] == "kitchen"
    assert entities[f"iotmon/{tenant}/sensor-1/co2"]["device_class"] == "carbon_dioxide"
    # Each state topic holds its metric's newest value, read through the config's template.
    values = {
        uid: render_lookup(config["value_template"], states[config["state_topic"]])
        for uid, config in entities.items()
    }
    assert values == {
        f"iotmon/{tenant}/env-1/temperature": 5.5,
        f"iotmon/{tenant}/env-1/humidity": 61.0,
        f"iotmon/{tenant}/gw-1/agent_queue_depth": 3.0,
        f"iotmon/{tenant}/sensor-1/co2": 812.0,
    }
    # Availability points at retained statuses that say online: the bridge's own, the
    # device's and (for a child) its gateway's.
    statuses = retained(mosquitto, "iotmon/v1/#")
    bridge_status = service_status_topic("homeassistant", settings.instance_id)
    for entry in fridge["availability"]:
        payload = statuses[entry["topic"]]
        assert render_lookup(entry["value_template"], payload) == entry["payload_available"]
    assert [e["topic"] for e in fridge["availability"]] == [
        bridge_status,
        status_topic(tenant, "env-1"),
        status_topic(tenant, "gw-1"),
    ]

    # A backlog drained late is not shown as the current value.
    publisher.publish(
        telemetry_topic(tenant, "gw-1"), batch([("env-1", "temperature", 1.0, older)])
    )
    publisher.flush()
    assert wait_until(lambda: bridge.snapshot().stale_readings == 2, 10), bridge.snapshot()
    settle(bridge)
    _, states = configs_and_states(mosquitto, prefix)
    assert render_lookup(fridge["value_template"], states[fridge["state_topic"]]) == 5.5

    metrics = scrape(bridge.metrics_url or "")
    assert metrics.value("iotmon_homeassistant_entities") == 4
    assert metrics.value("iotmon_homeassistant_states_published_total") == 4
    refused = metrics.by_label("iotmon_homeassistant_messages_refused_total", "reason")
    assert {reason: n for reason, n in refused.items() if n} == {
        "unknown_device": 1,
        "not_json": 1,
    }
    assert metrics.value("iotmon_mqtt_connected", {"client": settings.client_id}) == 1

    # Removing a device from the registry removes its entities and their states.
    with Registry(registry_settings) as registry:
        registry.remove_device(tenant, "sensor-1")
    assert wait_until(lambda: bridge.snapshot().configs_removed == 1, 10), bridge.snapshot()
    settle(bridge)
    configs, states = configs_and_states(mosquitto, prefix)
    assert f"iotmon/{tenant}/sensor-1/co2" not in by_unique_id(configs)
    assert len(configs) == 3
    assert len(states) == 3
    publisher.close()

    # Stopped, the bridge says offline: every entity goes unavailable in Home Assistant.
    bridge.stop()
    offline = json.loads(retained(mosquitto, bridge_status)[bridge_status])
    assert offline["state"] == "offline"


def test_a_restarted_bridge_keeps_what_is_announced_and_removes_what_left_meanwhile(
    fresh_mosquitto: MosquittoProcess,
    settings: Settings,
    registry_settings: RegistrySettings,
    tenant: str,
    bridges: list[HomeAssistantBridge],
) -> None:
    mosquitto = fresh_mosquitto
    first = start(settings, bridges)
    publisher = Publisher(mosquitto)
    ts = NOW - timedelta(seconds=5)
    publisher.publish(
        telemetry_topic(tenant, "gw-1"),
        batch([("env-1", "temperature", 5.0, ts), (None, "agent_queue_depth", 0.0, ts)]),
    )
    publisher.publish(telemetry_topic(tenant, "sensor-1"), single(20.0, ts, "temperature"))
    publisher.flush()
    assert wait_until(lambda: first.snapshot().configs_published == 3, 10)
    settle(first)
    first.stop()
    with Registry(registry_settings) as registry:
        registry.remove_device(tenant, "env-1")

    second = start(settings, bridges)
    # The registry thread's first rounds: the retained configs were read back, env-1's
    # removed, the others left as they are (not published again).
    assert wait_until(lambda: second.snapshot().configs_removed == 1, 10), second.snapshot()
    publisher.publish(telemetry_topic(tenant, "sensor-1"), single(21.0, NOW, "temperature"))
    publisher.flush()
    assert wait_until(lambda: second.snapshot().states_published == 1, 10)
    settle(second)
    snapshot = second.snapshot()
    assert snapshot.configs_published == 0
    assert snapshot.entities == 2
    configs, _ = configs_and_states(mosquitto, settings.discovery_prefix)
    assert set(by_unique_id(configs)) == {
        f"iotmon/{tenant}/gw-1/agent_queue_depth",
        f"iotmon/{tenant}/sensor-1/temperature",
    }
    publisher.close()


def test_other_tenants_and_other_integrations_configs_are_left_alone(
    fresh_mosquitto: MosquittoProcess,
    settings: Settings,
    registry_settings: RegistrySettings,
    tenant: str,
    bridges: list[HomeAssistantBridge],
) -> None:
    mosquitto = fresh_mosquitto
    prefix = settings.discovery_prefix
    publisher = Publisher(mosquitto)
    foreign = f"{prefix}/sensor/zigbee_0x1/temperature/config"
    publisher.publish(foreign, b'{"unique_id":"z2m_1","state_topic":"z2m/1"}', retain=True)
    with Registry(registry_settings) as registry:
        registry.add_device("elsewhere", "env-9")
    publisher.flush()
    bridge = start(settings, bridges)
    publisher.publish(telemetry_topic("elsewhere", "env-9"), single(1.0, NOW))
    publisher.publish(telemetry_topic(tenant, "sensor-1"), single(2.0, NOW))
    publisher.flush()
    assert wait_until(lambda: bridge.snapshot().states_published == 1, 10)
    assert wait_until(lambda: bridge.snapshot().devices == 3, 5)  # only its own tenant's
    settle(bridge)
    found = retained(mosquitto, f"{prefix}/#")
    assert found[foreign] == b'{"unique_id":"z2m_1","state_topic":"z2m/1"}'
    assert not any("elsewhere" in payload.decode() for payload in found.values())
    publisher.close()

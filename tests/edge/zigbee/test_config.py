"""The zigbee2mqtt section of the agent YAML and the local broker's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from iotmon_edge.cli import main
from iotmon_edge.config import ConfigError, Settings, load_agent_config, parse_agent_config
from iotmon_edge.zigbee2mqtt import Zigbee2MqttConfig
from iotmon_runtime.workers import EXIT_OK

EXAMPLE = Path(__file__).resolve().parents[3] / "edge" / "edge.zigbee2mqtt.example.yaml"


def test_the_shipped_example_is_valid() -> None:
    config = load_agent_config(EXAMPLE)
    assert config.zigbee2mqtt == Zigbee2MqttConfig()


def test_absent_section_means_no_bridge() -> None:
    assert parse_agent_config("tenant: acme\n").zigbee2mqtt is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("base_topic: zigbee2mqtt/#", "zigbee2mqtt.base_topic: must not contain MQTT wildcards"),
        ("base_topic: /z2m", "zigbee2mqtt.base_topic: must not start or end"),
        (
            "base_topic: a//b",
            "zigbee2mqtt.base_topic: must not start or end with '/' or hold an empty",
        ),
        ("device_prefix: ZB", "zigbee2mqtt.device_prefix: String should match pattern"),
        ("pending_max_age_s: 0", "zigbee2mqtt.pending_max_age_s: Input should be greater"),
        ("base_topc: x", "zigbee2mqtt.base_topc: Extra inputs are not permitted"),
    ],
)
def test_bad_sections_name_the_key(section: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_agent_config(f"tenant: acme\nzigbee2mqtt:\n  {section}\n", source="edge.yaml")


def test_the_agent_id_cannot_take_a_zigbee_device_id() -> None:
    parse_agent_config("tenant: acme\nagent_id: zb-gateway\nzigbee2mqtt: {}\n")
    with pytest.raises(ConfigError, match="has the form of a zigbee2mqtt device id"):
        parse_agent_config("tenant: acme\nagent_id: zb-00158d0001a2b3c4\nzigbee2mqtt: {}\n")


def test_device_ids() -> None:
    config = Zigbee2MqttConfig(device_prefix="zigbee")
    assert config.device_id("00158d0001a2b3c4") == "zigbee-00158d0001a2b3c4"
    assert config.is_device_id("zigbee-00158d0001a2b3c4")
    assert not config.is_device_id("zb-00158d0001a2b3c4")


def test_the_local_broker_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTMON_EDGE_ZIGBEE2MQTT__HOST", "10.0.0.5")
    monkeypatch.setenv("IOTMON_EDGE_ZIGBEE2MQTT__PORT", "1884")
    monkeypatch.setenv("IOTMON_EDGE_ZIGBEE2MQTT__PASSWORD", "s3cret")
    settings = Settings.from_environment()
    assert (settings.zigbee2mqtt.host, settings.zigbee2mqtt.port) == ("10.0.0.5", 1884)
    assert settings.mqtt.host == "127.0.0.1"  # the upstream broker is another setting
    assert "s3cret" not in repr(settings)


def test_config_check_names_the_bridge(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(EXAMPLE)]) == EXIT_OK
    assert "0 driver(s), 0 device(s), single mode every 10.0s, Zigbee2MQTT on zigbee2mqtt/#)" in (
        capsys.readouterr().out
    )

"""Agent YAML and environment settings: bad config fails fast and says where."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from iotmon_devices import default_registry
from iotmon_edge.cli import main
from iotmon_edge.config import (
    AgentConfig,
    ConfigError,
    PublishMode,
    Settings,
    load_agent_config,
    parse_agent_config,
)
from iotmon_runtime.mqtt import MqttProtocol
from iotmon_runtime.workers import EXIT_BAD_CONFIG, EXIT_OK

EXAMPLE = Path(__file__).resolve().parents[2] / "edge" / "edge.example.yaml"

VALID = """\
tenant: acme
agent_id: gw-01
publish_interval_s: 2
mode: batch
drivers:
  - type: simulated_environment
    count: 3
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    return path


def test_the_shipped_example_is_valid() -> None:
    config = load_agent_config(EXAMPLE)
    assert config.device_count() == 20


def _uncomment_hardware_drivers(text: str) -> str:
    lines = text.splitlines()
    start = lines.index("  # >>> hardware drivers")
    end = lines.index("  # <<< hardware drivers")
    block = [line[4:] if line.startswith("  # ") else "" for line in lines[start + 1 : end]]
    return "\n".join([*lines[:start], *("  " + line for line in block), *lines[end + 1 :]])


def test_the_examples_hardware_drivers_are_valid_when_uncommented(tmp_path: Path) -> None:
    config = load_agent_config(_write(tmp_path, _uncomment_hardware_drivers(EXAMPLE.read_text())))
    types = [driver.type for driver in config.drivers]
    assert sorted(types) == sorted(default_registry().types)
    assert config.device_count() == 20 + len(types) - 1


def test_a_valid_file_loads(tmp_path: Path) -> None:
    config = load_agent_config(_write(tmp_path, VALID))
    assert (config.tenant, config.agent_id, config.mode) == ("acme", "gw-01", PublishMode.BATCH)
    assert config.drivers[0].declared_device_ids() == ["env-0001", "env-0002", "env-0003"]


def test_an_error_names_the_file_and_key_path_without_union_tags(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace("count: 3", "count: 0"))
    with pytest.raises(ConfigError) as caught:
        load_agent_config(path)
    assert str(caught.value) == f"{path}: drivers.0.count: Input should be greater than 0 (line 7)"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            VALID.replace("count: 3", "count: 3\n    faults: {spike_rate: 2}"),
            "drivers.0.faults.spike_rate: Input should be less than or equal to 1",
        ),
        (VALID.replace("mode: batch", "mode: burst"), "mode: Input should be 'single' or 'batch'"),
        (VALID.replace("tenant: acme", "tenant: Acme/1"), "tenant: String should match pattern"),
        (VALID + "colour: red\n", "colour: Extra inputs are not permitted"),
        (VALID.replace("simulated_environment", "zigbee"), "drivers.0.type: Input tag 'zigbee'"),
        (
            VALID.replace("type: simulated_environment", "id_prefix: x"),
            "drivers.0.type: Field required",
        ),
        (
            VALID.replace("publish_interval_s: 2", "publish_interval_s: -1"),
            "publish_interval_s: Input should be greater than or equal to 0.05",
        ),
        (
            VALID + "  - type: simulated_environment\n",
            "drivers.1 device 'env-0001' is also in drivers.0",
        ),
    ],
)
def test_each_mistake_is_reported_where_it_is(yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_agent_config(yaml_text, source="site.yaml")
    assert str(caught.value).startswith("site.yaml: "), caught.value
    assert expected in str(caught.value)


def test_unreadable_and_malformed_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read"):
        load_agent_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"edge\.yaml: invalid YAML"):
        load_agent_config(_write(tmp_path, "tenant: [unclosed\n"))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_agent_config(_write(tmp_path, "- a\n- b\n"))


def test_config_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, VALID)
    assert main(["config", "check", str(good)]) == EXIT_OK
    assert "OK (tenant acme, agent gw-01, 1 driver(s), 3 device(s)" in capsys.readouterr().out

    bad = _write(tmp_path, VALID.replace("count: 3", "count: 0"))
    assert main(["config", "check", str(bad)]) == EXIT_BAD_CONFIG
    assert f"{bad}: drivers.0.count: Input should be greater than 0" in capsys.readouterr().err


def test_run_command_refuses_bad_config_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOTMON_EDGE_MQTT__PORT", "1")  # nothing listens: it must not get that far
    bad = _write(tmp_path, VALID + "colour: red\n")
    assert main(["run", "--config", str(bad)]) == EXIT_BAD_CONFIG
    assert "colour: Extra inputs are not permitted" in capsys.readouterr().err


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTMON_EDGE_MQTT__HOST", "broker.example")
    monkeypatch.setenv("IOTMON_EDGE_MQTT__PORT", "8883")
    monkeypatch.setenv("IOTMON_EDGE_MQTT__TLS", "true")
    monkeypatch.setenv("IOTMON_EDGE_MQTT__USERNAME", "edge")
    monkeypatch.setenv("IOTMON_EDGE_MQTT__PASSWORD", "s3cr3t-value")
    monkeypatch.setenv("IOTMON_EDGE_MQTT__PROTOCOL", "3.1.1")
    settings = Settings.from_environment()
    assert "s3cr3t" not in repr(settings)
    mqtt = settings.mqtt
    assert (mqtt.host, mqtt.port, mqtt.tls) == ("broker.example", 8883, True)
    assert mqtt.username == "edge"
    assert mqtt.password is not None
    assert mqtt.password.get_secret_value() == "s3cr3t-value"
    assert mqtt.protocol is MqttProtocol.V311
    assert mqtt.client_id is None


def test_placeholder_password_refused_outside_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTMON_EDGE_MQTT__PASSWORD", "changeme")
    assert Settings().mqtt.password is not None  # dev tolerates it
    monkeypatch.setenv("IOTMON_EDGE_ENVIRONMENT", "prod")
    with pytest.raises(ValidationError, match="placeholder"):
        Settings()


def test_every_agent_field_has_a_description_and_a_default() -> None:
    for name, field in AgentConfig.model_fields.items():
        assert field.description, name
        assert not field.is_required(), name


def test_log_level_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTMON_EDGE_LOG_LEVEL", "debug")
    assert Settings().log_level == "DEBUG"
    monkeypatch.setenv("IOTMON_EDGE_LOG_LEVEL", "loud")
    with pytest.raises(ValidationError, match="unknown log level"):
        Settings()


QUEUED = VALID + "queue:\n  path: {path}\n  max_bytes: 64MiB\n  drain_rate: 2000\n"


@pytest.mark.parametrize(
    ("queue_yaml", "expected"),
    [
        ("queue: {max_age_s: 2600000}", "queue.max_age_s: Input should be less than or equal to"),
        ("queue: {max_bytes: 1KiB}", "queue.max_bytes: Input should be greater than or equal to"),
        ("queue: {max_bytes: lots}", "queue.max_bytes: could not parse value and unit"),
        (
            "queue: {synchronous: sometimes}",
            "queue.synchronous: Input should be 'full' or 'normal'",
        ),
        ("queue: {drain_rate: -1}", "queue.drain_rate: Input should be greater than or equal"),
        (
            "health: {interval_s: 0}",
            "health.interval_s: Input should be greater than or equal to 1",
        ),
    ],
)
def test_queue_and_health_mistakes_name_their_key(queue_yaml: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_agent_config(VALID + queue_yaml + "\n", source="site.yaml")
    assert str(caught.value).startswith("site.yaml: "), caught.value
    assert expected in str(caught.value)


def test_config_check_says_where_the_queue_is_and_who_the_agent_logs_in_as(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOTMON_EDGE_MQTT__PASSWORD", "k9Vx-7fQ2-real-broker-secret")
    path = _write(tmp_path, QUEUED.format(path=tmp_path / "state" / "queue.db"))
    assert main(["config", "check", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "broker: mqtt://127.0.0.1:1883 as acme/gw-01, MQTT 5" in out
    assert f"queue: {tmp_path / 'state' / 'queue.db'} (at most 64.0MiB and 7 days" in out
    assert "drained at 2000 msg/s, live data first" in out
    assert "health: every 60s as agent_* telemetry of gw-01" in out
    memory_only = _write(tmp_path, VALID)
    assert main(["config", "check", str(memory_only)]) == EXIT_OK
    assert "queue: none: messages wait in memory" in capsys.readouterr().out


def test_config_check_refuses_a_queue_it_could_not_create(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    path = _write(tmp_path, QUEUED.format(path=blocker / "queue.db"))
    assert main(["config", "check", str(path)]) == EXIT_BAD_CONFIG
    assert f"{path}: queue.path: cannot create {blocker / 'queue.db'}" in capsys.readouterr().err


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a client certificate it signed, and an unrelated key (openssl CLI)."""
    folder = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ca",
             "-keyout", folder / "ca.key", "-out", folder / "ca.pem")  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=gw-01",
             "-keyout", folder / "client.key", "-out", folder / "client.csr")  # fmt: skip
    _openssl("x509", "-req", "-in", folder / "client.csr", "-CA", folder / "ca.pem",
             "-CAkey", folder / "ca.key", "-CAcreateserial", "-days", "2",
             "-out", folder / "client.pem")  # fmt: skip
    _openssl("genrsa", "-out", folder / "other.key", "2048")
    (folder / "garbage.pem").write_text("not a certificate\n")
    return folder


def _tls_env(monkeypatch: pytest.MonkeyPatch, **files: Path) -> None:
    monkeypatch.setenv("IOTMON_EDGE_MQTT__TLS", "true")
    for name, path in files.items():
        monkeypatch.setenv(f"IOTMON_EDGE_MQTT__{name.upper()}", str(path))


def test_config_check_accepts_a_working_client_certificate(
    pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _tls_env(
        monkeypatch,
        ca_file=pki / "ca.pem",
        cert_file=pki / "client.pem",
        key_file=pki / "client.key",
    )
    monkeypatch.setenv("IOTMON_EDGE_MQTT__PORT", "8883")
    assert main(["config", "check", str(_write(tmp_path, VALID))]) == EXIT_OK
    assert "broker: mqtts://127.0.0.1:8883 anonymously (TLS, client certificate)" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"ca_file": "missing.pem"}, "IOTMON_EDGE_MQTT__CA_FILE: cannot read"),
        ({"ca_file": "garbage.pem"}, "IOTMON_EDGE_MQTT__CA_FILE: {pki}/garbage.pem is not a PEM"),
        (
            {"cert_file": "client.pem", "key_file": "other.key"},
            "IOTMON_EDGE_MQTT__CERT_FILE / IOTMON_EDGE_MQTT__KEY_FILE: the certificate and key "
            "do not load together",
        ),
    ],
)
def test_config_check_and_run_refuse_tls_files_that_cannot_work(
    pki: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    expected: str,
) -> None:
    _tls_env(monkeypatch, **{name: pki / file for name, file in files.items()})
    monkeypatch.setenv("IOTMON_EDGE_MQTT__PORT", "1")  # run must stop before connecting
    path = _write(tmp_path, VALID)
    assert main(["config", "check", str(path)]) == EXIT_BAD_CONFIG
    assert expected.format(pki=pki) in capsys.readouterr().err
    assert main(["run", "--config", str(path)]) == EXIT_BAD_CONFIG
    assert expected.format(pki=pki) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("driver", "expected"),
    [
        (
            "  - type: modbus_meter\n    connection: {transport: rtu, baudrate: 12}\n",
            "drivers.1.connection.baudrate: Input should be greater than or equal to 300",
        ),
        ("  - type: modbus_meter\n    register_map: sdm999\n", "drivers.1.register_map: "),
        (
            "  - type: pulse_meter\n    retry: {initial_s: 10, max_s: 1}\n",
            "drivers.1.retry: max_s must be at least initial_s",
        ),
        ("  - type: gps\n    sweep_on: [run_end]\n", "drivers.1.sweep_on: Extra inputs"),
        ("  - type: ds18b20\n    sensor_id: 10-abc\n", "drivers.1.sensor_id: String should match"),
    ],
)
def test_hardware_driver_errors_name_file_and_key_path(
    tmp_path: Path, driver: str, expected: str
) -> None:
    path = _write(tmp_path, VALID + driver)
    with pytest.raises(ConfigError) as caught:
        load_agent_config(path)
    assert f"{path}: {expected}" in str(caught.value)
    assert re.search(r"\(line (8|9)\)", str(caught.value))

"""`iotmon broker` against a real mosquitto in secured mode (dynamic security)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from iotmon_registry import Registry, RegistrySettings
from iotmon_tools.broker import (
    CommandFailed,
    DynsecSession,
    Provisioned,
    service_identity,
)
from iotmon_tools.cli.main import build_app
from iotmon_tools.localstack import BrokerSecurity, MosquittoProcess, free_port
from tests.utils.mqtt_peer import NO_MATCHING_SUBSCRIBERS, NOT_AUTHORIZED, Peer

ADMIN_PASSWORD = "admin-password-for-tests"
INGEST_PASSWORD = "ingest-password-for-tests"
PASSWORD_LINE = re.compile(r"^password: (\S+)$", re.M)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoProcess]:
    process = MosquittoProcess(
        tmp_path_factory.mktemp("secured"),
        security=BrokerSecurity(
            [Provisioned(service_identity("ingest"), INGEST_PASSWORD)],
            admin_password=ADMIN_PASSWORD,
        ),
    )
    process.start()
    yield process
    process.stop()


def broker_cli(broker: MosquittoProcess, *args: str, **env: str) -> Result:
    environ = {
        "IOTMON_BROKER_MQTT__PORT": str(broker.port),
        "IOTMON_BROKER_MQTT__PASSWORD": ADMIN_PASSWORD,
        **env,
    }
    return CliRunner().invoke(build_app(), ["broker", *args], env=environ)


def login(broker: MosquittoProcess, username: str, password: str) -> bool:
    peer = Peer(broker.port, username, password)
    accepted = not peer.connect().is_failure
    if accepted:
        peer.close()
    return accepted


def generated_password(result: Result) -> str:
    assert result.exit_code == 0, result.output
    found = PASSWORD_LINE.findall(result.stdout)
    assert len(found) == 1, result.stdout
    return str(found[0])


def test_add_device_prints_a_password_once_that_logs_in(broker: MosquittoProcess) -> None:
    result = broker_cli(broker, "add-device", "acme", "cli-1")
    password = generated_password(result)
    assert "username: acme/cli-1" in result.stdout
    assert password not in result.stderr
    assert len(password) >= 32
    assert login(broker, "acme/cli-1", password)
    assert not login(broker, "acme/cli-1", password + "x")
    device = Peer(broker.port, "acme/cli-1", password)
    assert not device.connect().is_failure
    try:
        assert device.publish("iotmon/v1/acme/cli-1/telemetry", b"{}") == NO_MATCHING_SUBSCRIBERS
        assert device.publish("iotmon/v1/acme/cli-2/telemetry", b"{}") == NOT_AUTHORIZED
        assert device.subscribe_code("$share/iotmon-ingest/iotmon/v1/+/+/telemetry") == (
            NOT_AUTHORIZED
        )
    finally:
        device.close()
    again = broker_cli(broker, "add-device", "acme", "cli-1")
    assert again.exit_code == 1
    assert "exists already" in again.stderr


def test_a_given_password_is_used_and_not_printed(broker: MosquittoProcess, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-file-123\n")
    result = broker_cli(broker, "add-device", "acme", "cli-file", "--password-file", str(secret))
    assert result.exit_code == 0, result.output
    assert "from-a-file" not in result.output
    assert login(broker, "acme/cli-file", "from-a-file-123")
    piped = CliRunner().invoke(
        build_app(),
        [
            "broker",
            "--port",
            str(broker.port),
            "add-device",
            "acme",
            "cli-stdin",
            "--password-stdin",
        ],
        input="from-stdin-456\n",
        env={"IOTMON_BROKER_MQTT__PASSWORD": ADMIN_PASSWORD},
    )
    assert piped.exit_code == 0, piped.output
    assert "from-stdin" not in piped.output
    assert login(broker, "acme/cli-stdin", "from-stdin-456")


def test_rotate_refuses_the_old_password(broker: MosquittoProcess) -> None:
    old = generated_password(broker_cli(broker, "add-device", "acme", "cli-rotate"))
    still = Peer(broker.port, "acme/cli-rotate", old)
    assert not still.connect().is_failure
    assert not still.disconnected.is_set()
    new = generated_password(broker_cli(broker, "rotate-password", "acme/cli-rotate"))
    assert new != old
    assert not login(broker, "acme/cli-rotate", old)
    assert login(broker, "acme/cli-rotate", new)
    # The session that logged in with the old password was closed, not left running.
    assert still.disconnected.wait(5)
    still.close()


def test_revoke_refuses_the_client_and_enable_lets_it_back(broker: MosquittoProcess) -> None:
    password = generated_password(broker_cli(broker, "add-device", "acme", "cli-revoke"))
    assert broker_cli(broker, "revoke", "acme/cli-revoke").exit_code == 0
    assert not login(broker, "acme/cli-revoke", password)
    listed = json.loads(broker_cli(broker, "list", "--json").stdout)
    assert {"username": "acme/cli-revoke", "disabled": True}.items() <= next(
        row for row in listed if row["username"] == "acme/cli-revoke"
    ).items()
    assert broker_cli(broker, "enable", "acme/cli-revoke").exit_code == 0
    assert login(broker, "acme/cli-revoke", password)
    assert broker_cli(broker, "revoke", "acme/cli-revoke", "--delete").exit_code == 0
    assert not login(broker, "acme/cli-revoke", password)
    listed = json.loads(broker_cli(broker, "list", "--json").stdout)
    assert "acme/cli-revoke" not in {row["username"] for row in listed}
    # Its own role went with it: adding it again starts from a clean role.
    assert broker_cli(broker, "add-device", "acme", "cli-revoke").exit_code == 0


def test_gateway_children_from_options_and_a_file(broker: MosquittoProcess, tmp_path: Path) -> None:
    children = tmp_path / "children.txt"
    children.write_text("# meters of building 2\nm-2\nm-3  # basement\n\n")
    result = broker_cli(
        broker, "add-gateway", "acme", "cli-gw", "--child", "m-1", "--children-file", str(children)
    )
    password = generated_password(result)
    listed = {
        row["username"]: row for row in json.loads(broker_cli(broker, "list", "--json").stdout)
    }
    assert listed["acme/cli-gw"]["kind"] == "gateway"
    assert listed["acme/cli-gw"]["devices"] == ["cli-gw", "m-1", "m-2", "m-3"]
    assert broker_cli(broker, "set-children", "acme", "cli-gw", "--child", "m-4").exit_code == 0
    gateway = Peer(broker.port, "acme/cli-gw", password)
    assert not gateway.connect().is_failure
    try:
        assert gateway.publish("iotmon/v1/acme/m-1/status", b"{}") == NOT_AUTHORIZED
        assert gateway.publish("iotmon/v1/acme/m-4/status", b"{}") == NO_MATCHING_SUBSCRIBERS
    finally:
        gateway.close()
    refused = broker_cli(broker, "set-children", "acme", "cli-gw", "--child", "cli-gw")
    assert refused.exit_code == 2
    assert "its own child" in refused.stderr
    not_a_gateway = broker_cli(broker, "set-children", "acme", "cli-1", "--child", "x")
    assert not_a_gateway.exit_code != 0


def test_list_shows_kinds(broker: MosquittoProcess) -> None:
    result = broker_cli(broker, "list")
    assert result.exit_code == 0, result.output
    assert "iotmon-admin\tadmin" in result.stdout
    assert "iotmon-ingest\tservice" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rotate-password", "acme/nobody"], "no client 'acme/nobody'"),
        (["revoke", "acme/nobody"], "no client 'acme/nobody'"),
        (["revoke", "iotmon-admin"], "refusing to revoke iotmon-admin"),
        (["add-device", "acme", "Bad"], "device 'Bad' must match"),
        (["add-service", "ingest"], "exists already"),
    ],
)
def test_clear_errors(broker: MosquittoProcess, args: list[str], message: str) -> None:
    result = broker_cli(broker, *args)
    assert result.exit_code in (1, 2)
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_wrong_admin_password_is_a_refused_login(broker: MosquittoProcess) -> None:
    result = broker_cli(broker, "list", IOTMON_BROKER_MQTT__PASSWORD="wrong")
    assert result.exit_code == 1
    assert "refused the login of iotmon-admin" in result.stderr


def test_a_user_who_is_not_admin_is_not_authorised(broker: MosquittoProcess) -> None:
    result = broker_cli(
        broker,
        "--user",
        "iotmon-ingest",
        "list",
        IOTMON_BROKER_MQTT__PASSWORD=INGEST_PASSWORD,
    )
    assert result.exit_code == 1
    assert "not an admin" in result.stderr


def test_an_unreachable_broker_is_named() -> None:
    port = free_port()
    result = CliRunner().invoke(
        build_app(),
        ["broker", "--port", str(port), "--timeout", "1", "list"],
        env={"IOTMON_BROKER_MQTT__PASSWORD": "x"},
    )
    assert result.exit_code == 1
    assert f"cannot reach the MQTT broker at 127.0.0.1:{port}" in result.stderr


def test_a_broker_without_the_plugin_gives_no_answer(mosquitto: MosquittoProcess) -> None:
    result = CliRunner().invoke(
        build_app(),
        ["broker", "--port", str(mosquitto.port), "--timeout", "1", "list"],
        env={"IOTMON_BROKER_MQTT__PASSWORD": "x"},
    )
    assert result.exit_code == 1
    assert "dynamic security plugin loaded?" in result.stderr


def test_verbose_logs_never_show_a_password(broker: MosquittoProcess) -> None:
    result = broker_cli(broker, "--verbose", "add-device", "acme", "cli-verbose")
    password = generated_password(result)
    assert "connected to MQTT broker" in result.stderr
    assert password not in result.stderr
    assert ADMIN_PASSWORD not in result.output


def test_dynamic_security_expands_no_percent_u(broker: MosquittoProcess) -> None:
    """Why each device has a role of its own: mosquitto 2.0's plugin takes %u literally.
    Should a later mosquitto expand it, this fails and one shared role could do."""
    with DynsecSession(broker.admin_settings()) as session:
        session.run(
            {
                "command": "createRole",
                "rolename": "percent-u",
                "acls": [
                    {
                        "acltype": "publishClientSend",
                        "topic": "iotmon/v1/%u/telemetry",
                        "allow": True,
                    }
                ],
            }
        )
        session.run(
            {
                "command": "createClient",
                "username": "acme/pattern-1",
                "password": "pattern-password",
                "roles": [{"rolename": "percent-u"}],
            }
        )
        with pytest.raises(CommandFailed, match="Client not found"):
            session.run({"command": "getClient", "username": "acme/nobody"})
    device = Peer(broker.port, "acme/pattern-1", "pattern-password")
    assert not device.connect().is_failure
    try:
        assert device.publish("iotmon/v1/acme/pattern-1/telemetry", b"{}") == NOT_AUTHORIZED
    finally:
        device.close()


def test_the_plain_broker_still_takes_anonymous_clients(mosquitto: MosquittoProcess) -> None:
    assert login(mosquitto, "anyone", "anything")
    assert not mosquitto.secured


def test_admin_settings_need_a_secured_broker(mosquitto: MosquittoProcess) -> None:
    with pytest.raises(RuntimeError, match="no admin"):
        mosquitto.admin_settings()


def test_init_writes_the_admin_and_identities(tmp_path: Path) -> None:
    file = tmp_path / "dynamic-security.json"
    identities = tmp_path / "identities.yaml"
    identities.write_text(
        "clients:\n  - type: device\n    tenant: acme\n    id: env-1\n    password_env: DEV_PW\n"
    )
    result = CliRunner().invoke(
        build_app(),
        ["broker", "init", "--file", str(file), "--identities", str(identities)],
        env={"DEV_PW": "device-password"},
    )
    admin_password = generated_password(result)
    config = json.loads(file.read_text())
    assert [c["username"] for c in config["clients"]] == ["iotmon-admin", "acme/env-1"]
    assert admin_password not in file.read_text()
    again = CliRunner().invoke(build_app(), ["broker", "init", "--file", str(file)])
    assert again.exit_code == 1
    assert "exists" in again.stderr
    kept = CliRunner().invoke(build_app(), ["broker", "init", "--file", str(file), "--if-missing"])
    assert kept.exit_code == 0
    assert json.loads(file.read_text()) == config


def test_init_refuses_placeholder_passwords_outside_dev(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        build_app(),
        ["broker", "init", "--file", str(tmp_path / "f.json"), "--password-env", "ADMIN_PW"],
        env={"ADMIN_PW": "dev-broker-admin-password", "IOTMON_BROKER_ENVIRONMENT": "prod"},
    )
    assert result.exit_code == 2
    assert "ADMIN_PW: placeholder admin password refused" in result.stderr
    assert "dev-broker-admin-password" not in result.output
    assert not (tmp_path / "f.json").exists()


def test_gateway_children_from_the_registry_agree_with_ingest(
    broker: MosquittoProcess, tmp_path: Path
) -> None:
    """The broker's gateway role and ingest's check read the same list: the registry's."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with Registry(RegistrySettings(url=SecretStr(url))) as registry:
        registry.import_gateway("acme", "reg-gw", ["r-1", "r-2"])
    result = broker_cli(broker, "add-gateway", "acme", "reg-gw", "--from-registry", url)
    assert result.exit_code == 0, result.output
    password = generated_password(result)
    listed = {
        row["username"]: row for row in json.loads(broker_cli(broker, "list", "--json").stdout)
    }
    assert listed["acme/reg-gw"]["devices"] == ["reg-gw", "r-1", "r-2"]
    with Registry(RegistrySettings(url=SecretStr(url))) as registry:
        registry.import_gateway("acme", "reg-gw", ["r-2", "r-3"])
    synced = broker_cli(broker, "set-children", "acme", "reg-gw", "--from-registry", url)
    assert synced.exit_code == 0, synced.output
    gateway = Peer(broker.port, "acme/reg-gw", password)
    assert not gateway.connect().is_failure
    try:
        assert gateway.publish("iotmon/v1/acme/r-1/status", b"{}") == NOT_AUTHORIZED
        assert gateway.publish("iotmon/v1/acme/r-3/status", b"{}") == NO_MATCHING_SUBSCRIBERS
    finally:
        gateway.close()
    unknown = broker_cli(broker, "set-children", "acme", "nobody", "--from-registry", url)
    assert unknown.exit_code != 0
    assert "not in the registry" in unknown.stderr

"""The dynamic-security file: hashes as mosquitto makes them, roles and clients, written safely."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from iotmon_runtime.config_files import ConfigError
from iotmon_tools.broker.dynsec_file import (
    DynsecFileError,
    Provisioned,
    build_config,
    write_config,
)
from iotmon_tools.broker.identities import (
    IdentityError,
    admin_identity,
    device_identity,
    health_identity,
)
from iotmon_tools.broker.passwords import hash_password
from iotmon_tools.broker.provisioning import (
    IdentitiesFile,
    ProvisioningError,
    load_identities,
    resolve,
)
from iotmon_tools.localstack import find_program

REPO = Path(__file__).resolve().parents[3]
ADMIN = Provisioned(admin_identity(), "admin-password")


def test_hash_matches_mosquitto_ctrl(tmp_path: Path) -> None:
    """mosquitto_ctrl writes its admin's hash and salt; ours from the same salt is equal."""
    ctrl = find_program("mosquitto_ctrl")
    assert ctrl is not None, "mosquitto-clients is not installed"
    file = tmp_path / "ctrl.json"
    subprocess.run(
        [ctrl, "dynsec", "init", str(file), "admin", "pässword with spaces"],
        capture_output=True,
        timeout=30,
        check=False,  # it exits non-zero on purpose after init
    )
    made = json.loads(file.read_text())["clients"][0]
    ours = hash_password(
        "pässword with spaces", salt=base64.b64decode(made["salt"]), iterations=made["iterations"]
    )
    assert (ours.hash, ours.salt, ours.iterations) == (made["password"], made["salt"], 101)
    assert hash_password("pässword with spaces").salt != made["salt"]


def test_empty_password_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_config_holds_default_access_each_role_once_and_every_client() -> None:
    health = health_identity()
    config = build_config(
        ADMIN,
        [
            Provisioned(device_identity("acme", "env-1"), "pw-1"),
            Provisioned(health, "pw-2"),
            Provisioned(health_identity("probe"), "pw-3"),  # same shared role
        ],
    )
    assert config["defaultACLAccess"]["subscribe"] is False
    assert [c["username"] for c in config["clients"]] == [
        "iotmon-admin",
        "acme/env-1",
        "iotmon-health",
        "probe",
    ]
    assert [r["rolename"] for r in config["roles"]] == [
        "iotmon-admin",
        "iotmon-device:acme/env-1",
        "iotmon-health",
    ]
    device = config["clients"][1]
    assert device["roles"] == [{"rolename": "iotmon-device:acme/env-1"}]
    assert "pw-1" not in json.dumps(config)
    expected = hash_password("pw-1", salt=base64.b64decode(device["salt"]))
    assert device["password"] == expected.hash


def test_a_username_listed_twice_is_refused() -> None:
    twice = [Provisioned(device_identity("acme", "env-1"), "a")] * 2
    with pytest.raises(IdentityError, match="listed twice"):
        build_config(ADMIN, twice)
    with pytest.raises(IdentityError, match="not an admin"):
        build_config(Provisioned(health_identity(), "x"), [])


def test_written_owner_only_and_never_over_an_existing_file(tmp_path: Path) -> None:
    file = tmp_path / "security" / "dynamic-security.json"
    write_config(file, build_config(ADMIN, []))
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    first = file.read_text()
    with pytest.raises(DynsecFileError, match="exists"):
        write_config(file, build_config(ADMIN, []))
    assert file.read_text() == first
    write_config(file, build_config(ADMIN, []), overwrite=True)
    assert file.read_text() != first  # a new salt
    assert list(file.parent.iterdir()) == [file]


def test_compose_identities_file_loads() -> None:
    identities = load_identities(REPO / "broker" / "identities.compose.yaml")
    kinds = [entry.type for entry in identities.clients]
    # ingest, homeassistant, alerts, health, video, sims
    assert kinds == ["service", "service", "service", "health", "gateway", "gateway"]
    bridge = identities.clients[1].identity()
    assert bridge.username == "iotmon-homeassistant"
    assert "homeassistant/#" in {acl.topic for acl in bridge.role.acls}


def test_identities_file_errors_name_the_key_and_line(tmp_path: Path) -> None:
    file = tmp_path / "identities.yaml"
    file.write_text(
        "clients:\n"
        "  - type: device\n"
        "    tenant: acme\n"
        "    id: Env-1\n"
        "    password_env: PW\n"
        "  - type: robot\n"
        "    password_env: PW\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_identities(file)
    message = str(raised.value)
    assert "clients.0.id: String should match pattern" in message
    assert "(line 4)" in message
    assert "clients.1.type" in message


def _identities(**entry: object) -> IdentitiesFile:
    return IdentitiesFile.model_validate({"clients": [entry]})


def test_passwords_come_from_the_environment_named() -> None:
    identities = _identities(type="service", name="ingest", password_env="INGEST_PW")
    [provisioned] = resolve(identities, {"INGEST_PW": "s3cret-value"})
    assert provisioned.identity.username == "iotmon-ingest"
    assert provisioned.password == "s3cret-value"
    with pytest.raises(ProvisioningError, match="INGEST_PW: not set") as raised:
        resolve(identities, {"INGEST_PW": ""})
    assert "s3cret" not in str(raised.value)


def test_placeholder_passwords_are_refused_outside_dev() -> None:
    identities = _identities(type="health", password_env="HEALTH_PW")
    environ = {"HEALTH_PW": "dev-health-password"}
    assert resolve(identities, environ, environment="dev")
    with pytest.raises(ProvisioningError, match="HEALTH_PW: placeholder") as raised:
        resolve(identities, environ, environment="prod")
    assert "dev-health-password" not in str(raised.value)


def test_passwords_come_from_the_file_named(tmp_path: Path) -> None:
    """What docker-compose.yml does: each password is a compose secret under /run/secrets."""
    secret = tmp_path / "mqtt_ingest_password"
    secret.write_text("s3cret-from-a-file\n")
    identities = _identities(type="service", name="ingest", password_file=str(secret))
    [provisioned] = resolve(identities, {})
    assert provisioned.password == "s3cret-from-a-file"
    secret.write_text("dev-ingest-password\n")
    with pytest.raises(ProvisioningError) as raised:
        resolve(identities, {}, environment="prod")
    assert str(raised.value).startswith(f"{secret}: placeholder secret refused")
    assert "dev-ingest-password" not in str(raised.value)
    secret.write_text("\n")
    with pytest.raises(ProvisioningError, match=rf"clients\.0\.password_file: {secret} is empty"):
        resolve(identities, {})
    secret.unlink()
    with pytest.raises(ProvisioningError) as missing:
        resolve(identities, {})
    assert str(missing.value) == (
        f"clients.0.password_file: cannot read {secret}: No such file or directory"
    )


@pytest.mark.parametrize(
    "sources", [{}, {"password_env": "PW", "password_file": "/run/secrets/pw"}], ids=str
)
def test_an_entry_gives_its_password_exactly_one_way(
    tmp_path: Path, sources: dict[str, str]
) -> None:
    file = tmp_path / "identities.yaml"
    file.write_text(yaml.safe_dump({"clients": [{"type": "health", **sources}]}))
    with pytest.raises(ConfigError, match="give exactly one of password_env and password_file"):
        load_identities(file)


def test_a_gateway_that_is_its_own_child_names_the_entry() -> None:
    identities = _identities(
        type="gateway", tenant="demo", id="gw-1", children=["gw-1"], password_env="PW"
    )
    with pytest.raises(ProvisioningError, match=r"clients\.0: gateway 'gw-1' cannot be"):
        resolve(identities, {"PW": "x"})

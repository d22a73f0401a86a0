"""docker-compose.yml and Dockerfile: validated by Compose where it exists, and always in Python.

The Python checks load the file as Compose would (defaults interpolated, as on a
fresh checkout without .env) and hold it against the repository: images or builds,
dependencies and health checks, mounted paths, environment variables against the
real Settings classes, and credentials that must agree between services.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import types
import typing
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings
from typer.testing import CliRunner

from iotmon_alerts.cli import parser as alerts_parser
from iotmon_api.cli import parser as api_parser
from iotmon_contract import (
    event_topic,
    service_status_topic,
    shared_subscription,
    telemetry_filter,
)
from iotmon_edge import PublishMode
from iotmon_edge.cli import parser as edge_parser
from iotmon_homeassistant.cli import parser as homeassistant_parser
from iotmon_ingest.cli import parser as ingest_parser
from iotmon_ingest.config import DEFAULT_SHARE_GROUP, IngestMqttSettings
from iotmon_runtime.settings import SettingsError
from iotmon_tools.broker.dynsec_file import Provisioned
from iotmon_tools.broker.identities import DEFAULT_ADMIN_USER, IdentityKind
from iotmon_tools.broker.provisioning import load_identities, resolve
from iotmon_tools.broker.roles import devices_of
from iotmon_tools.cli.main import build_app
from iotmon_video.cameras import load_cameras
from iotmon_video.cli import parser as video_parser
from tests.deploy.compose import (
    COMPOSE_FILE,
    REPO,
    broker_init_command,
    depends_on,
    environment,
    interpolate,
    load_compose,
    local_environment,
    mounted_secrets,
    secret_files,
    simulator_config,
)

COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# Which Settings class reads which environment prefix.
SETTINGS_MODULES = {
    "IOTMON_ALERTS_": "iotmon_alerts.config",
    "IOTMON_API_": "iotmon_api.config",
    "IOTMON_BROKER_": "iotmon_tools.broker.settings",
    "IOTMON_INGEST_": "iotmon_ingest.config",
    "IOTMON_EDGE_": "iotmon_edge.config",
    "IOTMON_HOMEASSISTANT_": "iotmon_homeassistant.config",
    "IOTMON_VIDEO_": "iotmon_video.config",
}
IOTMON_SERVICES = [name for name, s in SERVICES.items() if "build" in s]
INFLUXDB_BACKENDS = {"influxdb", "influxdb2-init", "influxdb3"}
"""What a client of InfluxDB waits for: 1.8, or the profile's server (2.x: once its
init job has run)."""
ONE_SHOT = {
    dependency
    for service in SERVICES.values()
    for dependency, condition in depends_on(service).items()
    if condition == "service_completed_successfully"
}
"""Services that run to completion before others start (broker-admin's init)."""
DEPLOYMENT_VARIABLES = ("IOTMON_MQTT_", "IOTMON_REGISTRY_")
"""Read by broker-admin's identities file (password_env) and by the iotmon CLI
(IOTMON_REGISTRY_URL, registry-init), not by a Settings class."""


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.mark.parametrize(
    ("files", "profiles"),
    [
        ([COMPOSE_FILE], []),
        ([COMPOSE_FILE], ["influxdb2", "influxdb3", "video"]),
        ([COMPOSE_FILE, REPO / "docker-compose.tls.yml"], []),
    ],
    ids=["default", "all-profiles", "tls"],
)
def test_docker_compose_config_accepts_the_file(files: list[Path], profiles: list[str]) -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("no docker compose plugin or docker-compose here; Python checks below run")
    args = [arg for file in files for arg in ("-f", str(file))]
    args += [arg for profile in profiles for arg in ("--profile", profile)]
    done = subprocess.run(
        [*command, *args, "config", "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "IOTMON_MQTT_TLS_DIR": str(REPO / "broker" / "tls")},
    )
    assert done.returncode == 0, done.stderr


def test_the_stack_has_every_part() -> None:
    assert set(SERVICES) >= {"mosquitto", "influxdb", "grafana", "ingest", "api", "simulators"}
    assert SERVICES["influxdb"]["image"].startswith("influxdb:1.8.")
    assert SERVICES["influxdb2"]["image"].startswith("influxdb:2.")
    assert SERVICES["influxdb3"]["image"].startswith("influxdb:3.")
    assert SERVICES["influxdb3"]["image"].endswith("-core")
    assert SERVICES["mosquitto"]["image"].startswith("eclipse-mosquitto:2.")


@pytest.mark.parametrize("name", list(SERVICES))
def test_service_has_image_or_build_and_health_check(name: str) -> None:
    service = SERVICES[name]
    assert "image" in service or "build" in service
    if "build" in service:
        context = REPO / service["build"]["context"]
        assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file()
    if name in ONE_SHOT:
        # Runs once and exits: restarting it would loop, a health check means nothing.
        assert service["restart"] == "no", name
        assert "healthcheck" not in service, name
        return
    test = service["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL"), test
    assert len(test) > 1, test
    for key in ("interval", "timeout", "retries"):
        assert key in service["healthcheck"], key


@pytest.mark.parametrize("name", list(SERVICES))
def test_dependencies_exist_and_wait_for_health(name: str) -> None:
    for dependency, condition in depends_on(SERVICES[name]).items():
        assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
        if dependency in ONE_SHOT:
            assert condition == "service_completed_successfully", f"{name} -> {dependency}"
            continue
        assert condition == "service_healthy", f"{name} -> {dependency}: {condition}"
        assert "healthcheck" in SERVICES[dependency]


def test_dependency_order() -> None:
    assert {"broker-admin", "registry-init", "influxdb2-init"} == ONE_SHOT
    assert set(depends_on(SERVICES["mosquitto"])) == {"broker-admin"}
    assert set(depends_on(SERVICES["ingest"])) == {"mosquitto", "registry-init"} | INFLUXDB_BACKENDS
    assert set(depends_on(SERVICES["api"])) == {"registry-init"} | INFLUXDB_BACKENDS
    assert set(depends_on(SERVICES["grafana"])) == INFLUXDB_BACKENDS
    assert set(depends_on(SERVICES["influxdb2-init"])) == {"influxdb2"}
    assert "mosquitto" in depends_on(SERVICES["simulators"])


@pytest.mark.parametrize("name", ["ingest", "api", "alerts", "grafana"])
def test_influxdb_clients_wait_for_whichever_influxdb_serves(name: str) -> None:
    """1.8 unless its replicas are 0 (Compose then does not wait for it); the 2.x and
    3 servers only when their profile is on: those dependencies are not required."""
    service = SERVICES[name]
    assert set(depends_on(service)) >= INFLUXDB_BACKENDS
    required = set(depends_on(service, optional=False))
    assert "influxdb" in required
    assert not {"influxdb2-init", "influxdb3"} & required
    assert SERVICES["influxdb2-init"]["profiles"] == SERVICES["influxdb2"]["profiles"]
    assert SERVICES["influxdb"]["deploy"]["replicas"] == "1"
    off = load_compose({"IOTMON_INFLUXDB1_REPLICAS": "0"})["services"]["influxdb"]
    assert off["deploy"]["replicas"] == "0"


@pytest.mark.parametrize("name", list(SERVICES))
def test_bind_mounts_exist_in_the_repository(name: str) -> None:
    named = set(COMPOSE.get("volumes") or {})
    for volume in SERVICES[name].get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (REPO / source).exists(), f"{name}: {source} is not in the repository"
        else:
            assert source in named, f"{name}: volume {source} is not declared"


# -- environment variables against the real Settings classes ---------------------------


def _settings_class(variable: str) -> type[BaseSettings]:
    for prefix, module_name in SETTINGS_MODULES.items():
        if variable.startswith(prefix):
            settings: type[BaseSettings] = importlib.import_module(module_name).Settings
            assert settings.model_config.get("env_prefix") == prefix
            return settings
    raise AssertionError(f"{variable}: no iotmon Settings class reads this prefix")


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for member in typing.get_args(annotation):
            if (model := _model_of(member)) is not None:
                return model
    return None


def field_path(settings: type[BaseSettings], variable: str) -> list[str]:
    """The field a variable sets (``IOTMON_API_STORE__URL`` -> ["store", "url"]), or fail."""
    config = settings.model_config
    rest = variable[len(config.get("env_prefix", "")) :].lower()
    delimiter = config.get("env_nested_delimiter")
    parts = rest.split(delimiter.lower()) if delimiter else [rest]
    model: type[BaseModel] | None = settings
    for index, part in enumerate(parts):
        assert model is not None, f"{variable}: {'.'.join(parts[:index])} has no sub-fields"
        assert part in model.model_fields, f"{variable}: {model.__name__} has no field {part!r}"
        model = _model_of(model.model_fields[part].annotation)
    return parts


def _read(settings: BaseSettings, path: list[str]) -> str:
    value: Any = settings
    for part in path:
        value = getattr(value, part)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return "" if value is None else str(getattr(value, "value", value))


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(tuple(SETTINGS_MODULES)):
            monkeypatch.delenv(name)
    return monkeypatch


ENTRYPOINT_VARIABLES = {"INGEST_SHARE_GROUP": REPO / "deploy" / "ingest-slot.sh"}
"""Read by a service's compose entry point script, which turns them into settings."""


@pytest.mark.parametrize("name", IOTMON_SERVICES)
def test_environment_matches_settings_fields(
    name: str, clean_environment: pytest.MonkeyPatch
) -> None:
    """Each variable sets a field of the service's real Settings to the value given;
    a secret's *_FILE variable sets it to the content of the mounted secret."""
    env = local_environment(SERVICES[name], COMPOSE)
    assert env, f"{name} sets no environment"
    by_class: dict[type[BaseSettings], dict[str, tuple[list[str], bool]]] = {}
    for variable in env:
        if variable.startswith(DEPLOYMENT_VARIABLES):
            continue  # test_mqtt_clients_have_the_broker_identities_they_log_in_as
        if not variable.startswith("IOTMON_"):
            script = ENTRYPOINT_VARIABLES[variable]
            installed = SERVICES[name]["entrypoint"][1]
            dockerfile = (REPO / "Dockerfile").read_text()
            assert f"COPY {script.relative_to(REPO)} {installed}" in dockerfile
            assert variable in script.read_text()
            continue
        settings = _settings_class(variable)
        secrets: set[str] = settings.secret_variables()  # type: ignore[attr-defined]
        plain = variable.removesuffix("_FILE")
        # Not every *_FILE is a secret's: IOTMON_VIDEO_CAMERAS_FILE is a setting.
        from_file = plain != variable and plain in secrets
        path = field_path(settings, plain if from_file else variable)
        by_class.setdefault(settings, {})[variable] = (path, from_file)
    for settings, paths in by_class.items():
        for variable in paths:
            clean_environment.setenv(variable, env[variable])
        built = settings()
        for variable, (path, from_file) in paths.items():
            read = _read(built, path)
            expected = env[variable]
            if from_file:
                expected = Path(expected).read_text().rstrip("\r\n")
            assert read.lower() == expected.lower(), f"{variable}={env[variable]!r} -> {read!r}"


def _dockerfile_targets() -> dict[str, str]:
    """Dockerfile target -> the program its ENTRYPOINT runs."""
    targets: dict[str, str] = {}
    target = None
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if match := re.match(r"FROM \S+ AS (\w+)", line):
            target = match.group(1)
        elif (match := re.match(r'ENTRYPOINT \["([\w-]+)"\]', line)) and target:
            targets[target] = match.group(1)
    return targets


SERVICE_PARSERS = {
    "iotmon-alerts": alerts_parser,
    "iotmon-ingest": ingest_parser,
    "iotmon-api": api_parser,
    "iotmon-edge": edge_parser,
    "iotmon-homeassistant": homeassistant_parser,
    "iotmon-video": video_parser,
}


@pytest.mark.parametrize("name", IOTMON_SERVICES)
def test_command_is_a_real_command_of_its_image(name: str) -> None:
    service = SERVICES[name]
    target = service["build"]["target"]
    program = _dockerfile_targets()[target]
    command = [str(part) for part in service["command"]]
    if "entrypoint" in service:
        # A wrapper in front (ingest's slot script): it ends by running the image's program.
        entrypoint = [str(part) for part in service["entrypoint"]]
        assert entrypoint[-1] == program, entrypoint
        script = Path(entrypoint[1])
        dockerfile = (REPO / "Dockerfile").read_text()
        copied = re.search(rf"^COPY (\S+) {re.escape(str(script))}$", dockerfile, re.M)
        assert copied, f"{name}: the image has no {script}"
        assert 'exec "$@"' in (REPO / copied.group(1)).read_text()
    if program == "iotmon":
        result = CliRunner().invoke(build_app(), [*command, "--help"])
        assert result.exit_code == 0, result.output
        return
    # The service CLIs are argparse: parse the command as the container would run it.
    args = SERVICE_PARSERS[program]().parse_args(command)
    assert args.command == command[0]


def test_each_service_image_carries_only_its_service() -> None:
    targets = _dockerfile_targets()
    assert targets == {
        "alerts": "iotmon-alerts",
        "ingest": "iotmon-ingest",
        "api": "iotmon-api",
        "edge": "iotmon-edge",
        "homeassistant": "iotmon-homeassistant",
        "video": "iotmon-video",
        "tools": "iotmon",
    }
    built = {SERVICES[name]["build"]["target"] for name in IOTMON_SERVICES}
    assert built == {"alerts", "ingest", "api", "edge", "homeassistant", "video", "tools"}
    assert SERVICES["broker-admin"]["build"]["target"] == "tools"
    assert SERVICES["registry-init"]["build"]["target"] == "tools"
    dockerfile = (REPO / "Dockerfile").read_text()
    stage = dockerfile.split("FROM base AS ingest")[1].split("FROM base AS")[0]
    assert "services/api" not in stage
    assert "services/tools" not in stage
    alerts = dockerfile.split("FROM base AS alerts")[1].split("FROM base AS")[0]
    assert "services/api" not in alerts
    assert "services/tools" not in alerts


@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("api", "IOTMON_API_STORE__PASSWORD"),
        ("ingest", "IOTMON_INGEST_MQTT__PASSWORD"),
        ("broker-admin", "IOTMON_BROKER_MQTT__PASSWORD"),
    ],
)
def test_prod_without_secrets_is_refused(
    name: str, refused: str, clean_environment: pytest.MonkeyPatch
) -> None:
    """IOTMON_ENVIRONMENT=prod with the development secrets must not start a service;
    the refusal names the variable and the secret file to fix."""
    prod = load_compose({"IOTMON_ENVIRONMENT": "prod"})
    env = local_environment(prod["services"][name], prod)
    for variable, value in env.items():
        clean_environment.setenv(variable, value)
    settings = _settings_class(refused)
    with pytest.raises(SettingsError) as raised:
        settings.from_environment()  # type: ignore[attr-defined]
    (problem,) = raised.value.problems
    assert problem.startswith(f"{refused}_FILE ({env[refused + '_FILE']})")
    assert "placeholder secret refused" in problem
    assert Path(env[refused + "_FILE"]).read_text().strip() not in problem


def test_prod_with_placeholder_broker_passwords_creates_no_identities(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """broker-admin's init, with compose's prod environment, refuses the dev passwords:
    the admin's, and (with a real admin password) each client's, naming its file."""
    prod = load_compose({"IOTMON_ENVIRONMENT": "prod"})
    service = prod["services"]["broker-admin"]
    dynsec_file = tmp_path / "dynamic-security.json"
    command = broker_init_command(service, prod, dynsec_file, tmp_path)
    env = local_environment(service, prod)
    result = CliRunner().invoke(build_app(), command, env=env)
    assert result.exit_code == 2, result.output
    assert "placeholder admin password refused" in result.stderr
    admin = tmp_path / "admin-password"
    admin.write_text("a-real-admin-password-5e1f\n")
    command[command.index("--password-file") + 1] = str(admin)
    result = CliRunner().invoke(build_app(), command, env=env)
    assert result.exit_code == 2, result.output
    ingest_file = secret_files(prod)["mqtt_ingest_password"]
    assert f"{ingest_file}" in result.stderr
    assert "placeholder secret refused" in result.stderr
    assert "dev-ingest-password" not in result.output
    assert not dynsec_file.exists()


# -- ingest's state: a stable identity and a spool on a volume ----------------------


def test_ingest_health_check_reads_the_health_files_ingest_writes(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    """The check is ingest's own health command, run with the service's settings: it
    reads the files the running service writes, which live on its state volume."""
    from iotmon_ingest.config import IngestSettings

    service = SERVICES["ingest"]
    kind, command = service["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    # The replica's instance id is the slot its entry point claimed (test_deploy_scripts).
    id_file = re.search(r'IOTMON_INGEST_INSTANCE_ID="\$\(cat (\S+)\)"', command)
    assert id_file, command
    assert (
        f'"${{INGEST_ID_FILE:-{id_file.group(1)}}}"'
        in (REPO / "deploy" / "ingest-slot.sh").read_text()
    )
    program = _dockerfile_targets()[service["build"]["target"]]
    args = command[id_file.end() :].split()
    assert args[0] == program
    assert SERVICE_PARSERS[program]().parse_args(args[1:]).command == "health"
    for variable, value in local_environment(service, COMPOSE).items():
        if variable.startswith("IOTMON_"):
            clean_environment.setenv(variable, value)
    clean_environment.setenv("IOTMON_INGEST_INSTANCE_ID", "ingest-2")
    settings = IngestSettings.from_environment()
    mounts = _volume_mounts(service)
    for path in settings.health_files():
        assert any(PurePosixPath(path).is_relative_to(m) for m in mounts), path


def _volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> named volume, for the service's named (not bind) volumes."""
    named = set(COMPOSE.get("volumes") or {})
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source in named:
            mounts[target] = source
    return mounts


def test_ingest_spool_is_on_a_volume_the_image_user_owns() -> None:
    env = environment(SERVICES["ingest"])
    assert "IOTMON_INGEST_SPOOL_DIR" in env, "the default spool is relative to the WORKDIR"
    spool = PurePosixPath(env["IOTMON_INGEST_SPOOL_DIR"])
    assert spool.is_absolute(), f"{spool}: relative to the image's WORKDIR, not on a volume"
    mounts = [t for t in _volume_mounts(SERVICES["ingest"]) if spool.is_relative_to(t)]
    assert mounts, f"IOTMON_INGEST_SPOOL_DIR={spool} is on no named volume of ingest"
    # A fresh named volume takes the owner of the image's folder it mounts over:
    # the Dockerfile must make that folder the (non-root) USER's.
    dockerfile = (REPO / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)[-1]
    owned = re.findall(rf"install -d -o {re.escape(user)} -g \S+ ((?:/\S+ ?)+)", dockerfile)
    owned_paths = {PurePosixPath(p) for group in owned for p in group.split()}
    for mount in mounts:
        assert PurePosixPath(mount) in owned_paths, f"Dockerfile: {mount} is not {user}'s"


# -- credentials and ports that must agree between services ---------------------------


def _secret_of(service: dict[str, Any], value: str) -> str:
    """The secret a container path (a *_FILE value) names; fails unless it is mounted."""
    name = mounted_secrets(service).get(PurePosixPath(value))
    assert name is not None, f"{value}: not a secret this service mounts"
    return name


def _secret(name: str) -> str:
    return secret_files(COMPOSE)[name].read_text().rstrip("\r\n")


def _broker_identities(work: Path) -> dict[str, Provisioned]:
    """The identities broker-admin creates, with the passwords of the secrets it mounts."""
    service = SERVICES["broker-admin"]
    command = broker_init_command(service, COMPOSE, work / "dynsec.json", work)
    identities = Path(command[command.index("--identities") + 1])
    return {p.identity.username: p for p in resolve(load_identities(identities), {})}


def test_mqtt_clients_have_the_broker_identities_they_log_in_as(tmp_path: Path) -> None:
    identities = _broker_identities(tmp_path)
    admin = SERVICES["broker-admin"]
    for name, variable in (
        ("ingest", "IOTMON_INGEST_MQTT__"),
        ("alerts", "IOTMON_ALERTS_MQTT__"),
        ("simulators", "IOTMON_EDGE_MQTT__"),
        ("video", "IOTMON_VIDEO_MQTT__"),
        ("homeassistant", "IOTMON_HOMEASSISTANT_MQTT__"),
    ):
        env = environment(SERVICES[name])
        account = identities[env[variable + "USERNAME"]]
        secret = _secret_of(SERVICES[name], env[variable + "PASSWORD_FILE"])
        assert secret in mounted_secrets(admin).values(), f"{name}: broker-admin lacks {secret}"
        assert account.password == _secret(secret), name
    ingest = environment(SERVICES["ingest"])
    account = identities[ingest["IOTMON_INGEST_MQTT__USERNAME"]]
    assert account.identity.kind is IdentityKind.SERVICE
    # Its role grants both ways ingest subscribes: plainly (one replica, the default)
    # and in its share group (replicas, --workers N).
    assert IngestMqttSettings().share_group is None
    granted = {acl.topic for acl in account.identity.role.acls}
    assert telemetry_filter() in granted
    assert shared_subscription(DEFAULT_SHARE_GROUP, telemetry_filter()) in granted
    simulators = environment(SERVICES["simulators"])
    config = simulator_config()
    username = simulators["IOTMON_EDGE_MQTT__USERNAME"]
    assert username == f"{config.tenant}/{config.agent_id}"
    assert config.mode is PublishMode.BATCH
    gateway = identities[username]
    assert gateway.identity.kind is IdentityKind.GATEWAY
    # Every sensor the agent announces is a registered child, and nothing more.
    declared = [d for driver in config.drivers for d in driver.declared_device_ids()]
    assert devices_of(gateway.identity.role.acls) == [config.agent_id, *declared]
    video = environment(SERVICES["video"])
    cameras = load_cameras(REPO / "services" / "video" / "video.example.yaml")
    camera_gateway = identities[video["IOTMON_VIDEO_MQTT__USERNAME"]]
    assert camera_gateway.identity.kind is IdentityKind.GATEWAY
    assert video["IOTMON_VIDEO_MQTT__USERNAME"] == f"{cameras.tenant}/video-0"
    assert devices_of(camera_gateway.identity.role.acls) == [
        "video-0",
        *(camera.id for camera in cameras.cameras),
    ]
    # It publishes the availability of its own instance, which is named like the gateway,
    # and reads the events of every bus a cabin camera of the example follows.
    assert video["IOTMON_VIDEO_INSTANCE_ID"] == "video-0"
    rights = {(acl.type.value, acl.topic) for acl in camera_gateway.identity.role.acls}
    assert ("publishClientSend", service_status_topic("video", "video-0")) in rights
    for camera in cameras.cameras:
        if camera.cabin is not None:
            topic = event_topic(cameras.tenant, camera.cabin.vehicle)
            assert ("publishClientReceive", topic) in rights
    health = identities["iotmon-health"]
    command = SERVICES["mosquitto"]["healthcheck"]["test"][1]
    assert "-u iotmon-health" in command
    used = re.findall(r"/run/secrets/\w+", command)
    assert [_secret_of(SERVICES["mosquitto"], path) for path in used] == ["mqtt_health_password"]
    assert health.password == _secret("mqtt_health_password")


def test_broker_admin_and_mosquitto_share_the_dynamic_security_file() -> None:
    admin = SERVICES["broker-admin"]
    command = [str(part) for part in admin["command"]]
    written = PurePosixPath(command[command.index("--file") + 1])
    conf = (REPO / "broker" / "mosquitto.conf").read_text()
    read = PurePosixPath(re.findall(r"^plugin_opt_config_file (\S+)$", conf, re.M)[0])
    assert written.name == read.name
    volume = _volume_mounts(admin)[str(written.parent)]
    assert _volume_mounts(SERVICES["mosquitto"])[str(read.parent)] == volume
    # The admin it creates is the one the admin commands log in as.
    env = environment(admin)
    password_file = command[command.index("--password-file") + 1]
    assert env["IOTMON_BROKER_MQTT__PASSWORD_FILE"] == password_file
    assert _secret_of(admin, password_file) == "mqtt_admin_password"
    assert env["IOTMON_BROKER_MQTT__USERNAME"] == DEFAULT_ADMIN_USER
    assert "--admin-user" not in command
    assert env["IOTMON_BROKER_MQTT__HOST"] == "mosquitto"
    assert re.search(r"^plugin /usr/lib/mosquitto_dynamic_security\.so$", conf, re.M)
    assert not re.search(r"^(acl_file|password_file) ", conf, re.M)


def test_influxdb_accounts_agree() -> None:
    """Writer and reader: the same usernames and secrets in InfluxDB 1.8's init, the 2.x
    init job and every client; one database and one URL everywhere."""
    influx = SERVICES["influxdb"]
    influx_env = environment(influx)
    init = SERVICES["influxdb2-init"]
    init_env = environment(init)
    writer = (
        influx_env["INFLUXDB_WRITE_USER"],
        _secret_of(influx, influx_env["INFLUXDB_WRITE_USER_PASSWORD_FILE"]),
    )
    reader = (
        influx_env["INFLUXDB_READ_USER"],
        _secret_of(influx, influx_env["INFLUXDB_READ_USER_PASSWORD_FILE"]),
    )
    assert (
        init_env["IOTMON_WRITER"],
        _secret_of(init, init_env["IOTMON_WRITER_PASSWORD_FILE"]),
    ) == writer
    assert (
        init_env["IOTMON_READER"],
        _secret_of(init, init_env["IOTMON_READER_PASSWORD_FILE"]),
    ) == reader
    clients = {
        "ingest": ("IOTMON_INGEST_STORE__", writer),
        "alerts": ("IOTMON_ALERTS_STORE__", writer),
        "api": ("IOTMON_API_STORE__", reader),
    }
    database = influx_env["INFLUXDB_DB"]
    assert init_env["IOTMON_DATABASE"] == database
    assert environment(SERVICES["influxdb2"])["DOCKER_INFLUXDB_INIT_BUCKET"] == database
    for name, (prefix, account) in clients.items():
        env = environment(SERVICES[name])
        password = _secret_of(SERVICES[name], env[prefix + "PASSWORD_FILE"])
        assert (env[prefix + "USERNAME"], password) == account, name
        assert env[prefix + "DATABASE"] == database, name
        assert env[prefix + "URL"] == "http://influxdb:8086", name
    grafana = SERVICES["grafana"]
    grafana_env = environment(grafana)
    datasource = yaml.safe_load(
        (REPO / "dashboards/provisioning/datasources/influxdb.yaml").read_text()
    )["datasources"][0]
    read_from = re.fullmatch(r"\$__file\{(\S+)\}", datasource["secureJsonData"]["password"])
    assert read_from, datasource["secureJsonData"]
    grafana_account = (grafana_env["IOTMON_INFLUXDB_USER"], _secret_of(grafana, read_from[1]))
    assert grafana_account == reader
    assert grafana_env["IOTMON_INFLUXDB_DATABASE"] == database
    # One variable moves them all to another InfluxDB (the profiles').
    moved = load_compose({"IOTMON_INFLUXDB_URL": "http://influxdb3:8181"})["services"]
    for name, (prefix, _) in clients.items():
        assert environment(moved[name])[prefix + "URL"] == "http://influxdb3:8181"
    assert environment(moved["grafana"])["IOTMON_INFLUXDB_URL"] == "http://influxdb3:8181"


def test_grafana_gets_every_variable_and_file_its_provisioning_uses() -> None:
    grafana = environment(SERVICES["grafana"])
    mounted = {str(path) for path in mounted_secrets(SERVICES["grafana"])}
    for file in (REPO / "dashboards" / "provisioning").rglob("*.yaml"):
        # Dumped back without comments: only values count.
        values = yaml.safe_dump(yaml.safe_load(file.read_text()))
        for name in re.findall(r"\$\{(\w+)\}", values):
            assert grafana.get(name), (
                f"{file.name} uses ${{{name}}}, grafana's environment lacks it"
            )
        for path in re.findall(r"\$__file\{([^}]+)\}", values):
            assert path in mounted, f"{file.name} reads {path}, grafana mounts no such secret"


def test_api_port_and_health_check_agree() -> None:
    api = SERVICES["api"]
    port = environment(api)["IOTMON_API_PORT"]
    assert environment(api)["IOTMON_API_HOST"] == "0.0.0.0"
    assert any(p.endswith(f":{port}") for p in api["ports"])
    assert f"127.0.0.1:{port}/health" in " ".join(api["healthcheck"]["test"])


# -- Dockerfile ---------------------------------------------------------------------


def test_dockerfile_copies_existing_paths_and_runs_iotmon() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for sources in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for source in sources.split():
            assert (REPO / source).exists(), f"Dockerfile copies missing {source}"
    assert 'ENTRYPOINT ["iotmon"]' in dockerfile
    scripts = (REPO / "services" / "tools" / "pyproject.toml").read_text()
    assert re.search(r'^iotmon = "iotmon_tools\.cli\.main:run"$', scripts, re.M)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M), "the image must not run as root"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".env"} <= set(ignored)


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} $SET $$SYS", env) == (
        "x d  d x $SYS"
    )
    with pytest.raises(ValueError, match="needed"):
        interpolate("${UNSET:?needed}", env)
    assert yaml.safe_load(COMPOSE_FILE.read_text())["name"] == "iotmon"


# -- the registry: one database for the services that read it, filled before ingest --


def _registry_url(name: str) -> str:
    env = environment(SERVICES[name])
    found = [v for k, v in env.items() if k.endswith(("_REGISTRY__URL", "_REGISTRY_URL"))]
    assert len(found) == 1, f"{name}: {sorted(env)}"
    return found[0]


def test_registry_is_one_sqlite_file_on_a_volume_the_image_user_owns() -> None:
    users = [n for n in SERVICES if any("REGISTRY" in k for k in environment(SERVICES[n]))]
    assert {"registry-init", "ingest", "api"} <= set(users)
    urls = {_registry_url(name) for name in users}
    assert len(urls) == 1, urls
    path = PurePosixPath(next(iter(urls)).removeprefix("sqlite:///"))
    assert path.is_absolute()
    dockerfile = (REPO / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)[-1]
    owned = re.findall(rf"install -d -o {re.escape(user)} -g \S+ ((?:/\S+ ?)+)", dockerfile)
    owned_paths = {PurePosixPath(p) for group in owned for p in group.split()}
    for name in users:
        mounts = _volume_mounts(SERVICES[name])
        assert str(path.parent) in mounts, f"{name}: {path.parent} is not on a named volume"
        assert mounts[str(path.parent)] == "registry-data"
    assert path.parent in owned_paths, f"Dockerfile: {path.parent} is not {user}'s"


def test_registry_init_imports_the_agent_the_simulators_run() -> None:
    init = SERVICES["registry-init"]
    command = [str(part) for part in init["command"]]
    assert command[:2] == ["registry", "import"]
    mounts = {t: s for s, t in (v.split(":")[:2] for v in init["volumes"])}
    simulators = {t: s for s, t in (v.split(":")[:2] for v in SERVICES["simulators"]["volumes"])}
    simulator_file = SERVICES["simulators"]["command"][-1]
    assert mounts[command[2]] == simulators[simulator_file]
    assert depends_on(SERVICES["ingest"])["registry-init"] == "service_completed_successfully"


def test_prod_api_without_a_token_refuses_to_start(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The compose stack in prod with real secrets: an empty api_token secret and an empty
    registry stop the API; a token in the secret file starts it."""
    from iotmon_api.cli import startup_refusal
    from iotmon_api.config import Settings as ApiSettings

    for name in secret_files(COMPOSE):
        (tmp_path / name).write_text(f"r3al-{name}-81\n")
    prod = {"IOTMON_ENVIRONMENT": "prod", "IOTMON_SECRETS_DIR": str(tmp_path)}
    for token, refused in (("", True), ("a-real-random-token-0c1d\n", False)):
        (tmp_path / "api_token").write_text(token)
        compose = load_compose(prod)
        env = local_environment(compose["services"]["api"], compose)
        assert env["IOTMON_API_TOKEN_FILE"] == str(tmp_path / "api_token")
        for variable, value in env.items():
            clean_environment.setenv(variable, value)
        # The container's path, moved to a folder of this test.
        clean_environment.setenv("IOTMON_API_REGISTRY__URL", f"sqlite:///{tmp_path / 'r.db'}")
        refusal = startup_refusal(ApiSettings.from_environment())
        assert (refusal is not None) is refused, refusal
        if refused:
            assert refusal is not None
            assert "IOTMON_API_TOKEN" in refusal

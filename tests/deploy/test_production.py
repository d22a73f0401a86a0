"""docker-compose.yml as a production file: pinned images, secrets only as files, only
MQTT published, the profiles complete. Python checks (Compose itself is not here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from iotmon_ingest.config import IngestMetricsSettings
from tests.deploy.compose import (
    REPO,
    TLS_FILE,
    enabled_services,
    environment,
    load_compose,
    mounted_secrets,
    secret_files,
)

COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PROFILES = sorted({p for s in SERVICES.values() for p in s.get("profiles", [])})
LOOPBACK = "127.0.0.1"
SECRET_WORDS = re.compile(r"PASSWORD|TOKEN|SECRET|_KEY$", re.I)
DISTRIBUTIONS = {
    "ingest": "services/ingest",
    "api": "services/api",
    "alerts": "services/alerts",
    "edge": "edge",
    "video": "services/video",
    "homeassistant": "services/homeassistant",
    "tools": "services/tools",
}
"""Dockerfile target -> the distribution whose version tags its image."""


@pytest.mark.parametrize("name", list(SERVICES))
def test_images_are_pinned_to_a_version(name: str) -> None:
    image = SERVICES[name]["image"]
    repository, _, tag = image.rpartition(":")
    assert repository, f"{name}: {image} has no tag (that is :latest)"
    assert tag != "latest", f"{name}: {image}"
    # A full version: 2.0.20, 1.8.10, 11.3.0, 3.7.0-core; not 2.0 or 3-core.
    assert re.fullmatch(r"v?\d+\.\d+\.\d+(-[a-z0-9.]+)?", tag), f"{name}: {image} floats"
    if "build" in SERVICES[name]:
        target = SERVICES[name]["build"]["target"]
        project = tomllib.loads((REPO / DISTRIBUTIONS[target] / "pyproject.toml").read_text())
        assert image == f"iotmon/{target}:{project['project']['version']}", (
            f"{name}: tag {image} is not the version of {DISTRIBUTIONS[target]}"
        )


def test_no_secret_is_interpolated_into_the_file() -> None:
    """Passwords are not read from .env into the environment any more: no ${…PASSWORD…}."""
    text = (REPO / "docker-compose.yml").read_text()
    assert not re.findall(r"\$\{[A-Z_]*(PASSWORD|TOKEN)[A-Z_]*(:-[^}]*)?\}", text)


@pytest.mark.parametrize("name", list(SERVICES))
def test_secrets_reach_services_as_files_only(name: str) -> None:
    """Every variable that names a secret holds a path under /run/secrets that the
    service mounts; no secret value is in any environment."""
    service = SERVICES[name]
    mounted = {str(path) for path in mounted_secrets(service)}
    for variable, value in environment(service).items():
        if not SECRET_WORDS.search(variable.removesuffix("_FILE").removesuffix("__FILE")):
            continue
        assert variable.endswith("_FILE"), f"{name}: {variable} holds a secret in the environment"
        assert value in mounted, f"{name}: {variable}={value} is not a secret it mounts"
    for path in re.findall(r"/run/secrets/\w+", str(service)):
        assert path in mounted, f"{name} uses {path} without mounting it"


def test_every_secret_is_used_and_has_a_development_file() -> None:
    used = {name for s in SERVICES.values() for name in mounted_secrets(s).values()}
    files = secret_files(COMPOSE)
    assert set(files) == used, f"declared but unused: {set(files) - used}"
    for name, path in files.items():
        assert path.is_file(), f"{name}: {path} missing (a fresh checkout must start)"
        assert path.parent == REPO / "secrets" / "dev"
    moved = secret_files(load_compose({"IOTMON_SECRETS_DIR": "/etc/iotmon/secrets"}))
    assert {PurePosixPath(p.parent) for p in moved.values()} == {
        PurePosixPath("/etc/iotmon/secrets")
    }


def _published(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host address, container port) of each published port."""
    found = []
    for port in service.get("ports", []):
        parts = str(port).split(":")
        assert len(parts) == 3, f"{port}: publish with an explicit host address"
        found.append((parts[0], parts[2]))
    return found


@pytest.mark.parametrize("profiles", [[], PROFILES], ids=["default", "all-profiles"])
def test_only_mqtt_is_published_beyond_loopback(profiles: list[str]) -> None:
    for name, service in enabled_services(COMPOSE, *profiles).items():
        for address, port in _published(service):
            if name == "mosquitto":
                assert port == "1883"
                continue
            assert address == LOOPBACK, f"{name}: {port} published on {address}"


def test_tls_adds_8883_with_the_certificates_mounted() -> None:
    with pytest.raises(ValueError, match="IOTMON_MQTT_TLS_DIR"):
        load_compose(overrides=[TLS_FILE])
    tls = load_compose({"IOTMON_MQTT_TLS_DIR": "/etc/iotmon/tls"}, overrides=[TLS_FILE])
    mosquitto = tls["services"]["mosquitto"]
    assert sorted(port for _, port in _published(mosquitto)) == ["1883", "8883"]
    mounts = {t: s for s, t in (v.split(":")[:2] for v in mosquitto["volumes"])}
    assert mounts["/mosquitto/certs"] == "/etc/iotmon/tls"
    assert mounts["/mosquitto/config/conf.d"] == "./broker/tls"
    listener = (REPO / "broker" / "tls" / "listener.conf").read_text()
    for path in re.findall(r"^(?:certfile|keyfile) (\S+)$", listener, re.M):
        assert path.startswith("/mosquitto/certs/"), path
    # Everything else is docker-compose.yml's.
    assert {k: v for k, v in tls["services"].items() if k != "mosquitto"} == {
        k: v for k, v in SERVICES.items() if k != "mosquitto"
    }


@pytest.mark.parametrize(
    ("profile", "url"),
    [("influxdb2", "http://influxdb2:8086"), ("influxdb3", "http://influxdb3:8181")],
)
def test_an_influxdb_profile_serves_the_stack_instead_of_1_8(profile: str, url: str) -> None:
    """The README's settings for the profile: 1.8 gets no replica, every client reaches
    the profile's server, which listens where the URL says."""
    env = {"IOTMON_INFLUXDB1_REPLICAS": "0", "IOTMON_INFLUXDB_URL": url}
    compose = load_compose(env)
    services = enabled_services(compose, profile)
    assert services["influxdb"]["deploy"]["replicas"] == "0"
    server = services[profile]
    host, port = url.removeprefix("http://").split(":")
    assert host == profile
    assert any(p.endswith(f":{port}") for p in server["ports"]), server["ports"]
    if profile == "influxdb3":
        assert f"--http-bind=0.0.0.0:{port}" in server["command"]
    clients = {
        "ingest": "IOTMON_INGEST_STORE__URL",
        "api": "IOTMON_API_STORE__URL",
        "alerts": "IOTMON_ALERTS_STORE__URL",
        "grafana": "IOTMON_INFLUXDB_URL",
    }
    for name, variable in clients.items():
        assert environment(services[name])[variable] == url, name
        assert (
            profile in services[name]["depends_on"]
            or f"{profile}-init" in (services[name]["depends_on"])
        )
    others = {p for p in PROFILES if p.startswith("influxdb") and p != profile}
    assert not others & set(services)


def test_influxdb3_clients_use_its_token_as_their_password() -> None:
    """3 Core has tokens only; its v1 API takes one as the Basic-auth password."""
    token = secret_files(COMPOSE)["influxdb3_token"]
    compose = load_compose(
        {"IOTMON_INFLUXDB_WRITE_SECRET": str(token), "IOTMON_INFLUXDB_READ_SECRET": str(token)}
    )
    files = secret_files(compose)
    assert files["influxdb_write_password"] == token
    assert files["influxdb_read_password"] == token
    assert token.read_text().startswith("apiv3_")


def test_prometheus_scrapes_every_ingest_replica() -> None:
    """With replicas, a static ingest:9101 target reaches one container; DNS discovery of
    the service name reaches each. promtool (Debian's prometheus) checks the file."""
    path = REPO / "dashboards" / "prometheus" / "prometheus.yml"
    jobs = {job["job_name"]: job for job in yaml.safe_load(path.read_text())["scrape_configs"]}
    (discovery,) = jobs["ingest"]["dns_sd_configs"]
    assert discovery["names"] == ["ingest"]
    assert discovery["type"] == "A"
    env = environment(SERVICES["ingest"])
    assert "IOTMON_INGEST_METRICS__PORT" not in env
    assert discovery["port"] == IngestMetricsSettings().port
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed; the structure above is checked")
    done = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr

"""``iotmon registry``: import an agent's YAML, add sites, devices, children, guardians, list."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from iotmon_registry import Registry, RegistrySettings
from iotmon_tools.cli.main import build_app

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "edge" / "edge.example.yaml"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


def iotmon(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        build_app(), ["registry", *args, "--url", url], env={"COLUMNS": "200"}
    )
    return result.exit_code, result.output


def opened(url: str) -> Registry:
    return Registry(RegistrySettings(url=SecretStr(url))).open()


def test_import_registers_the_agent_as_gateway_of_its_declared_devices(
    url: str, tmp_path: Path
) -> None:
    code, out = iotmon(url, "add-site", "hq", "--tenant", "demo")
    assert code == 0, out
    code, out = iotmon(url, "import", str(EXAMPLE), "--site", "hq")
    assert code == 0, out
    assert "gateway demo/edge-0001 with 20 children (20 new, 0 moved here, 0 released)" in out
    code, out = iotmon(url, "import", str(EXAMPLE))
    assert "(0 new, 0 moved here, 0 released)" in out
    registry = opened(url)
    try:
        gateways = registry.gateway_map().gateways
        assert gateways == {("demo", f"env-{i:04d}"): "edge-0001" for i in range(1, 21)}
        assert registry.devices_on_sites("demo", ["hq"]) == {
            "edge-0001",
            *(f"env-{i:04d}" for i in range(1, 21)),
        }
    finally:
        registry.close()
    code, out = iotmon(url, "list", "--tenant", "demo")
    assert code == 0, out
    assert "devices (21)" in out
    assert "env-0007" in out
    assert "(hq)" in out  # inherited from the gateway


def test_import_errors_name_the_file_and_key(url: str, tmp_path: Path) -> None:
    bad = tmp_path / "edge.yaml"
    bad.write_text(EXAMPLE.read_text().replace("count: 20", "count: -1"))
    code, out = iotmon(url, "import", str(bad))
    assert code == 1
    assert f"{bad}: drivers.0.count" in out
    code, out = iotmon(url, "import", str(EXAMPLE), "--site", "nowhere")
    assert code == 1
    assert f"{EXAMPLE}: tenant 'demo': site 'nowhere' is not registered" in out


def test_add_commands_and_their_refusals(url: str) -> None:
    assert iotmon(url, "add-site", "plant-1", "--tenant", "acme")[0] == 0
    assert iotmon(url, "add-device", "gw-1", "--tenant", "acme", "--site", "plant-1")[0] == 0
    code, out = iotmon(url, "add-device", "env-1", "--tenant", "acme", "--gateway", "gw-1")
    assert code == 0, out
    assert out.strip() == "device acme/env-1 registered behind gateway gw-1"
    code, out = iotmon(url, "add-device", "env-2", "--tenant", "acme", "--gateway", "gw-9")
    assert code == 1
    assert "tenant 'acme': gateway 'gw-9' is not registered" in out
    code, out = iotmon(
        url, "add-child", "kid-1", "--tenant", "acme", "--tag", "E2001", "--tag", "E2002"
    )
    assert code == 0, out
    assert "with tags E2001, E2002" in out
    code, out = iotmon(url, "add-guardian", "mum", "--tenant", "acme", "--child", "kid-1")
    assert code == 0, out
    code, out = iotmon(url, "add-guardian", "dad", "--tenant", "acme", "--child", "kid-7")
    assert code == 1
    assert "child 'kid-7' is not registered" in out
    code, out = iotmon(url, "list")
    assert "guardians (1)" in out
    assert "E2001, E2002" in out


def test_a_bad_url_is_named(tmp_path: Path) -> None:
    code, out = iotmon("not a url", "list")
    assert code == 1
    assert "--url / IOTMON_REGISTRY_URL: not a SQLAlchemy database URL" in out
